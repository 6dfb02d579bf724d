"""What the import and export commands check before they touch a database."""

from django.conf import settings
from django.core.management import CommandError

from admin_site.conf import panel_apps
from routers import app_label_of


def check_model_on_alias(model, alias):
    """Return ``alias`` if it is a panel's database that holds ``model``'s app; else raise CommandError."""
    panels = settings.CONSOLE_DATABASES
    if alias not in panels:
        raise CommandError(f"Unknown database '{alias}': use one of {', '.join(panels)}.")
    holders = panel_apps(panels).get(app_label_of(model), [])
    if alias not in holders:
        where = ", ".join(holders) or "no database"
        raise CommandError(
            f"'{alias}' does not hold {model._meta.app_label}.{model.__name__}; its app lives in: {where}."
        )
    return alias
