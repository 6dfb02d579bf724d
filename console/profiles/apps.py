from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "console.profiles"
    label = "profiles"
    verbose_name = "Profiles and teams"
    default_auto_field = "django.db.models.BigAutoField"
