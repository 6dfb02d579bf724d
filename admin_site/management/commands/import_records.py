"""Import a file into one database, all or nothing, the way the panels do.

The same limits as the web: files over ``CONSOLE_IMPORT_MAX_BYTES`` are
refused unless ``--max-bytes`` raises the limit, the file is read a chunk of
rows at a time, and at most ``CONSOLE_IMPORT_MAX_PROBLEMS`` problems are
printed, each with a short excerpt of its value.
"""

import sys
import time
from pathlib import Path

from django.apps import apps
from django.core.management import BaseCommand, CommandError
from django.db import Error as DatabaseError
from tqdm import tqdm

from admin_site.pinning import using_database
from admin_site.transfers.cli import check_model_on_alias
from admin_site.transfers.formats import BY_NAME, FileFormatError, excerpt, max_upload_bytes
from admin_site.transfers.imports import read_dataset, run_import
from admin_site.transfers.resources import resource_for


class Command(BaseCommand):
    help = "Import rows of app_label.Model from a CSV/XLSX/JSON/TSV file into --database; nothing is written on error."

    def add_arguments(self, parser):
        parser.add_argument("model", help="app_label.ModelName, e.g. customers.Customer")
        parser.add_argument("file", help="the file to import")
        parser.add_argument("--database", required=True, help="the alias to import into (e.g. customers)")
        parser.add_argument("--format", choices=sorted(BY_NAME), help="default: from the file name's extension")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per bulk INSERT/UPDATE")
        parser.add_argument(
            "--max-bytes",
            type=int,
            help=f"refuse larger files (default: CONSOLE_IMPORT_MAX_BYTES, now {max_upload_bytes():,})",
        )

    def handle(
        self, *args, model, file, database, format=None, dry_run=False, batch_size=1000, max_bytes=None, **options
    ):
        model_class = self.model(model, database)
        path = Path(file)
        file_format = format or path.suffix.lstrip(".").lower()
        if file_format not in BY_NAME:
            raise CommandError(f"Cannot tell the format of {file}: pass --format ({', '.join(sorted(BY_NAME))}).")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if max_bytes is not None and max_bytes < 1:
            raise CommandError("--max-bytes must be at least 1.")
        if not path.is_file():
            raise CommandError(f"Cannot read {file}: not a file.")

        started = time.monotonic()
        with using_database(database):
            try:
                rows = read_dataset(path, file_format, max_bytes=max_bytes)
            except FileFormatError as exc:
                hint = " (--max-bytes raises the limit)" if "the limit is" in str(exc) else ""
                raise CommandError(f"{file}: {exc}{hint} Nothing was imported.") from None
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
            resource = resource_for(model_class, batch_size=batch_size)(using=database)
            with self.progress() as bar:
                resource.progress = bar.update
                try:
                    result = run_import(
                        resource,
                        rows,
                        dry_run=dry_run,
                        via="command",
                        file_name=path.name,
                        file_format=file_format,
                        keep_rows=0,
                    )
                except DatabaseError as exc:
                    raise CommandError(
                        f"The database '{database}' failed during the import ({type(exc).__name__}: "
                        f"{excerpt(exc, 200)}); nothing was imported. Run the import again once it is back."
                    ) from None
        elapsed = time.monotonic() - started

        if result.problems:
            for problem in result.problems:
                self.stderr.write(f"{file}: {problem}")
            count = f"{len(result.problems)} problem(s)"
            if result.problems_over or result.stopped_at:
                count = f"More than {len(result.problems)} problems (the first {len(result.problems)} are listed"
                count += f"; checking stopped at row {result.stopped_at})" if result.stopped_at else ")"
            raise CommandError(f"{count} in {file}: nothing was imported into '{database}'.")
        totals = result.totals
        verb = "Checked (dry run, nothing written)" if dry_run else "Imported"
        self.stdout.write(
            f"{verb} {result.total_rows} rows of {model} into '{database}' in {elapsed:.1f}s "
            f"({result.total_rows / max(elapsed, 1e-9):,.0f} rows/s): {totals['new']} new, "
            f"{totals['update']} updated, {totals['delete']} deleted, {totals['skip']} skipped."
        )

    def model(self, label, database):
        try:
            model_class = apps.get_model(label)
        except (LookupError, ValueError):
            raise CommandError(f"Unknown model '{label}'; use app_label.ModelName, e.g. customers.Customer.") from None
        check_model_on_alias(model_class, database)
        return model_class

    def progress(self):
        """A progress counter (rows, rate) on a terminal; silent in scripts and pipes."""
        return tqdm(unit="rows", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)
