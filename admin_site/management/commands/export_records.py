"""Export a model's rows from one database to a file or stdout, streamed, with progress and an audit record.

    manage.py export_records customers.Customer --database archive -o archive.csv
    manage.py export_records customers.VipCustomer --database customers --format json --filter country=DE

The whole command runs with the alias pinned (``admin_site.pinning``) and
reads through ``admin_site.transfers.exports.stream_export``, so a million rows go out
with flat memory.  A file is written under a temporary name and renamed when
complete: a failed export never leaves a file that looks finished.
"""

import os
import secrets
import sys
import time
from pathlib import Path

from django.apps import apps
from django.core.exceptions import FieldError, ValidationError
from django.core.management import BaseCommand, CommandError
from tqdm import tqdm

from admin_site.pinning import using_database
from admin_site.transfers.cli import check_model_on_alias
from admin_site.transfers.exports import FORMATS, stream_export
from admin_site.transfers.records import audited
from admin_site.transfers.resources import resource_for

STDOUT = "<stdout>"


class Command(BaseCommand):
    help = "Export the rows of app_label.Model from one database as CSV, TSV, JSON or XLSX (streamed)."

    def add_arguments(self, parser):
        parser.add_argument("model", help="app_label.ModelName, e.g. customers.Customer (proxies too).")
        parser.add_argument("--database", required=True, help="The alias to read, e.g. customers.")
        parser.add_argument("-o", "--output", help="File to write (default: stdout).")
        parser.add_argument(
            "--format", dest="file_format", choices=list(FORMATS), help="Default: from the file's extension, else csv."
        )
        parser.add_argument(
            "--filter",
            dest="filters",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="queryset.filter(FIELD=VALUE); repeat for several. __in takes a,b,c; __isnull takes true/false.",
        )
        parser.add_argument("--fields", help="Comma-separated resource fields to export (default: all).")

    def handle(self, *args, model, database, output, file_format, filters, fields, verbosity=1, **options):
        model = self.get_model(model)
        alias = self.check_alias(database, model)
        file_format = file_format or format_of(output) or "csv"
        to_stdout = output in (None, "-")
        if to_stdout and file_format == "xlsx" and (not hasattr(self.stdout, "buffer") or self.stdout.isatty()):
            raise CommandError("XLSX is binary: write it to a file with -o FILE (or pipe stdout).")
        label = f"{model._meta.app_label}.{model.__name__}"
        with using_database(alias):
            resource = resource_for(model)(using=alias)
            queryset = apply_filters(model._default_manager.using(alias).all(), filters, resource.secret_names())
            selected = selected_fields(resource, fields)
            started = time.monotonic()
            with audited(
                "export",
                database=alias,
                model=model,
                via="command",
                file_name=STDOUT if to_stdout else str(output),
                file_format=file_format,
            ) as record:
                export = stream_export(resource, queryset, file_format, selected_fields=selected)
                try:
                    with self.progress(queryset, export) as bar:
                        if to_stdout:
                            self.write_stdout(export, bar)
                        else:
                            write_file(Path(output), export, bar)
                finally:
                    export.close()
                    record.rows_total = export.rows
                if export.notice:
                    record.message = export.notice
                    self.stderr.write(self.style.WARNING(export.notice))
        elapsed = time.monotonic() - started
        if verbosity:
            rate = f"{export.rows / elapsed:,.0f}" if elapsed > 0 else "-"
            summary = (
                f"Exported {export.rows:,} rows of {label} from '{alias}' to {STDOUT if to_stdout else output} "
                f"in {elapsed:.2f}s ({rate} rows/s)"
            )
            (self.stderr if to_stdout else self.stdout).write(summary)

    # -- arguments --------------------------------------------------------------

    def get_model(self, label):
        try:
            return apps.get_model(label)
        except (LookupError, ValueError):
            raise CommandError(f"Unknown model '{label}': use app_label.ModelName, e.g. customers.Customer.") from None

    def check_alias(self, alias, model):
        return check_model_on_alias(model, alias)

    # -- output -----------------------------------------------------------------

    def progress(self, queryset, export):
        """A tqdm bar on a terminal (rows, rate, ETA; total from a count), nothing otherwise."""
        stream = getattr(self.stderr, "_out", sys.stderr)
        enabled = stream.isatty()
        total = None
        if enabled:
            total = queryset.count()
            if export.row_limit is not None:
                total = min(total, export.row_limit)
        return tqdm(total=total, unit=" rows", unit_scale=True, file=stream, disable=not enabled, leave=False)

    def write_stdout(self, export, bar):
        binary = getattr(self.stdout, "buffer", None)
        for chunk in export.chunks:
            if binary is not None:
                binary.write(chunk)
            else:
                self.stdout.write(chunk.decode("utf-8"), ending="")
            advance(bar, export)
        if binary is not None:
            binary.flush()
        else:
            self.stdout.flush()


def write_file(path, export, bar):
    """Write under a temporary name in the same directory; rename only once every row is written.

    The file is created as ``open()`` creates files (the umask decides its mode).
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with open(partial, "xb") as handle:
            for chunk in export.chunks:
                handle.write(chunk)
                advance(bar, export)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def advance(bar, export):
    bar.update(export.rows - bar.n)


def format_of(output):
    if not output or output == "-":
        return None
    suffix = Path(output).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else None


def apply_filters(queryset, filters, secret=()):
    """``--filter field=value`` as ``queryset.filter(field=value)``; a bad field or value is a CommandError.

    A filter on a secret (``password__startswith=pbkdf2``) would tell a hash a
    prefix at a time: refused, as the export itself leaves secrets out.
    """
    for text in filters:
        lookup, sep, value = text.partition("=")
        if not sep or not lookup:
            raise CommandError(f"--filter {text}: use field=value, e.g. --filter country=DE.")
        if secret and {part.lower() for part in lookup.split("__")} & set(secret):
            raise CommandError(f"--filter {lookup.split('__')[0]}…: a secret field cannot be filtered on.")
        try:
            queryset = queryset.filter(**{lookup: filter_value(lookup, value)})
        except (FieldError, ValidationError, ValueError, TypeError) as exc:
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            raise CommandError(f"--filter {text}: {message}") from None
    return queryset


def filter_value(lookup, value):
    """Command-line text for lookups that take other types: lists and booleans."""
    if lookup.endswith("__in"):
        return [item.strip() for item in value.split(",")]
    if lookup.endswith("__isnull"):
        flags = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if value.lower() not in flags:
            raise ValueError("__isnull takes true or false.")
        return flags[value.lower()]
    return value


def selected_fields(resource, fields):
    """``--fields a,b`` as the resource's field names; unknown names are an error, not silently skipped."""
    if not fields:
        return None
    known = {}
    for name, field in resource.fields.items():
        known[name] = name
        known.setdefault(field.column_name, name)
    selected = []
    for name in (n.strip() for n in fields.split(",")):
        if not name:
            continue
        if name not in known:
            raise CommandError(f"Unknown field '{name}' for --fields: use some of {', '.join(resource.fields)}.")
        selected.append(known[name])
    if not selected:
        raise CommandError("--fields names no field.")
    return selected
