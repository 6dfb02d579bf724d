from django.apps import AppConfig


class LegacyConfig(AppConfig):
    name = "console.legacy"
    label = "legacy"
    verbose_name = "Legacy system"
