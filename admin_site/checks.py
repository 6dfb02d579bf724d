"""System checks that turn configuration mistakes into messages at start-up."""

from django.apps import apps
from django.conf import settings
from django.core import checks

from admin_site.conf import panel_apps


@checks.register
def check_every_app_has_a_database(app_configs=None, **kwargs):
    """An app with models but no alias would send its queries to the empty default."""
    holders = panel_apps(settings.CONSOLE_DATABASES)
    errors = []
    for config in apps.get_app_configs():
        if any(True for _ in config.get_models()) and config.label not in holders:
            errors.append(
                checks.Error(
                    f"App '{config.label}' has models but no database in CONSOLE_DATABASES holds it.",
                    hint="Add it to the 'apps' of one alias.",
                    obj=config.label,
                    id="console.E001",
                )
            )
    return errors


@checks.register
def check_panels_have_databases(app_configs=None, **kwargs):
    """Each configured panel needs a DATABASES entry of the same alias."""
    return [
        checks.Error(f"Panel '{alias}' has no DATABASES entry.", obj=alias, id="console.E002")
        for alias in settings.CONSOLE_DATABASES
        if not settings.DATABASES.get(alias)
    ]
