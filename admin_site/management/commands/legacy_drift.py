"""``manage.py legacy_drift``: what changed in a database's tables under its unmanaged models.

Prints the differences per drifted model (``admin_site.drift``) and, for each
drifted table still present, the model code ``inspectdb`` would write for it
now, so the model can be brought back in step by hand.
"""

import io

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from admin_site.drift import database_drift, unclaimed_tables

#: How many tables without a model the command names: a legacy database may hold hundreds.
UNCLAIMED_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Compare the unmanaged models of a panel database with its live tables and print each difference, "
        "with the model inspectdb would write now for each drifted table. "
        "Exit status 0 when no model has drifted, 1 when one has."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            default="legacy",
            help='The panel database alias to compare. Defaults to "legacy".',
        )

    def handle(self, *args, database, **options):
        try:
            drifted = database_drift(database)
        except DatabaseError as error:
            raise CommandError(f"Could not read the tables of '{database}': {error}") from error
        if not drifted:
            self.stdout.write(self.style.SUCCESS(f"No drift: every unmanaged model matches its table on '{database}'."))
            return
        for drift in drifted:
            self.stdout.write(self.style.WARNING(f"{drift.label} (table {drift.table}):"))
            for difference in drift.differences:
                self.stdout.write(f"  - {difference}")
            if any(difference.kind == "table" for difference in drift.differences):
                self.stdout.write("  inspectdb has no table to read.")
            else:
                self.stdout.write(f"  The model inspectdb writes now for {drift.table}:")
                self.stdout.write(self.inspect(database, drift.table))
        if any(difference.kind == "table" for drift in drifted for difference in drift.differences):
            self.show_unclaimed(database)
        raise CommandError(f"{len(drifted)} model(s) on '{database}' have drifted from their tables.", returncode=1)

    def show_unclaimed(self, database):
        """Name the tables no model reads: a table reported missing may have been renamed to one of them."""
        names = unclaimed_tables(database)
        if not names:
            return
        shown = ", ".join(names[:UNCLAIMED_SHOWN])
        more = f" and {len(names) - UNCLAIMED_SHOWN} more" if len(names) > UNCLAIMED_SHOWN else ""
        self.stdout.write(f"Tables no model reads (a missing table may have been renamed): {shown}{more}.")
        self.stdout.write(f"  'manage.py inspectdb --database {database} --include-views TABLE' writes its model.")

    def inspect(self, database, table):
        """inspectdb's model for ``table`` (views included), without its file header."""
        out = io.StringIO()
        call_command("inspectdb", table, database=database, include_views=True, stdout=out)
        code = out.getvalue()
        start = code.find("class ")
        return code[start:] if start >= 0 else code
