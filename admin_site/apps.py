"""App config: discover admin modules, keep panel permissions in step, add checks."""

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


class AdminSiteConfig(AppConfig):
    name = "admin_site"
    verbose_name = "Console panels"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.utils.module_loading import autodiscover_modules

        from admin_site import checks, drift  # noqa: F401  (registers the checks, drift.py the schema drift one)
        from admin_site.permissions import sync_panels
        from admin_site.sessions import mark_seen

        autodiscover_modules("admin")
        post_migrate.connect(sync_panels, sender=self)
        user_logged_in.connect(mark_seen, dispatch_uid="admin_site.sessions.mark_seen")
