"""Migrate every configured database, the console's own first, in one command."""

from django.conf import settings
from django.core.management import BaseCommand, call_command

from admin_site.conf import panel_apps


def migration_order(panels):
    """The alias holding contenttypes/auth first: its post_migrate creates the
    content types and permissions of every app, which later aliases refer to."""
    console = panel_apps(panels)["contenttypes"][0]
    return [console] + [alias for alias in panels if alias != console]


class Command(BaseCommand):
    help = "Apply migrations to every database in CONSOLE_DATABASES (plain `migrate` has no default database)."

    def handle(self, *args, verbosity=1, **options):
        for alias in migration_order(settings.CONSOLE_DATABASES):
            if verbosity:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database '{alias}':"))
            call_command("migrate", database=alias, interactive=False, verbosity=verbosity, stdout=self.stdout)
