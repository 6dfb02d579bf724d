"""Panel access permissions: one ``admin_site.access_<alias>`` per configured alias."""

from django.apps import apps as global_apps
from django.conf import settings
from django.db import router


def access_codename(alias):
    """The codename of the permission to enter ``alias``'s panel."""
    return f"access_{alias}"


def sync_panels(using, apps=global_apps, **kwargs):
    """After migrate, create the Panel row and access permission of every alias."""
    Panel = apps.get_model("admin_site", "Panel")
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    if not router.allow_migrate_model(using, Panel):
        return
    content_type, _ = ContentType.objects.using(using).get_or_create(app_label="admin_site", model="panel")
    for alias, panel in settings.CONSOLE_DATABASES.items():
        Panel.objects.using(using).update_or_create(alias=alias, defaults={"title": panel["title"]})
        Permission.objects.using(using).update_or_create(
            content_type=content_type,
            codename=access_codename(alias),
            defaults={"name": f"Can access the {panel['title']} panel ({alias})"},
        )


def can_enter(user, alias):
    """Active staff holding the panel's access permission; superusers enter every panel."""
    return bool(
        user.is_active
        and user.is_staff
        and (user.is_superuser or user.has_perm(f"admin_site.{access_codename(alias)}"))
    )
