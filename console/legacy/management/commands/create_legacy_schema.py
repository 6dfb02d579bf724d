"""``manage.py create_legacy_schema``: create the legacy tables and view on an empty database.

The legacy models are ``managed = False``, so ``migrate`` never creates their
tables; development and test databases get them from the shipped SQL instead.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from console.legacy.schema import created_names, schema_file, statements, target


class Command(BaseCommand):
    help = "Create the legacy schema (tables and view) from the shipped SQL, on a database that has none of it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            default="legacy",
            help='The database alias to create the schema on. Defaults to "legacy".',
        )
        parser.add_argument(
            "--add-missing",
            action="store_true",
            help="On a database that has part of the schema (an older demo database), create only the "
            "tables and views it lacks, with their indexes; existing ones are left as they are.",
        )

    def handle(self, *args, database, add_missing=False, verbosity=1, **options):
        if database == DEFAULT_DB_ALIAS:
            # `default` is deliberately empty in this project.
            raise CommandError("The legacy schema belongs on a panel database, not on 'default'.")
        connection = connections[database]
        try:
            path = schema_file(connection.vendor)
        except LookupError as error:
            raise CommandError(str(error)) from error
        sql = path.read_text(encoding="utf-8")
        wanted = created_names(sql)

        # Case-insensitive: MySQL with lower_case_table_names folds table names.
        with connection.cursor() as cursor:
            existing = {name.lower() for name in connection.introspection.table_names(cursor, include_views=True)}
        present = [name for name in wanted if name.lower() in existing]
        if present and len(present) == len(wanted):
            if verbosity:
                self.stdout.write(f"The legacy schema already exists on '{database}': nothing to do.")
            return
        missing = [name for name in wanted if name not in present]
        if present and not add_missing:
            raise CommandError(
                f"The legacy schema is only partly present on '{database}': "
                f"{', '.join(present)} exist, {', '.join(missing)} do not. "
                "Drop the partial schema, or run with --add-missing to create only what is missing "
                "(a demo database made by an older version)."
            )

        # One transaction: all-or-nothing on SQLite (MySQL commits each DDL statement anyway).
        # Statements about no table (a session sql_mode) always run; the others only for what is missing.
        creating = {name.lower() for name in missing}
        with transaction.atomic(using=database), connection.cursor() as cursor:
            for statement in statements(sql):
                name = target(statement)
                if name is None or name.lower() in creating:
                    cursor.execute(statement)
        if verbosity:
            done = "Created the legacy schema" if not present else "Added the missing legacy tables"
            self.stdout.write(self.style.SUCCESS(f"{done} on '{database}' from {path.name}: {', '.join(missing)}."))
