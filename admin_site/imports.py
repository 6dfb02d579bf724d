"""One import path for the admin, the command line and the benchmark.

``read_dataset`` turns an uploaded file into rows (or a ``FileFormatError``);
``run_import`` imports them into one alias, all or nothing, and records the
outcome in the audit trail; ``problems`` lists every error with its row,
column and offending value, for the preview page and the command's output.
"""

from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS
from django.db import DatabaseError

from admin_site.formats import BY_NAME, FileFormatError, check_size
from admin_site.models import TransferRecord


@dataclass(frozen=True)
class Problem:
    """One reason a file cannot be imported: where it is and what is wrong."""

    row: int | None  # position in the file (header = 1); None for the file as a whole
    column: str | None
    value: object
    message: str

    def __str__(self):
        where = f"row {self.row}" if self.row is not None else "file"
        if self.column:
            where += f", column “{self.column}”"
        value = "" if self.value in (None, "") else f" (value {str(self.value)[:80]!r})"
        return f"{where}{value}: {self.message}"


def read_dataset(data, file_format):
    """Parse ``data`` (bytes) as ``file_format`` ("csv", "xlsx", …); raise FileFormatError."""
    check_size(len(data))
    try:
        format_class = BY_NAME[file_format]
    except KeyError:
        raise FileFormatError(f"Unknown format {file_format!r}; use one of {', '.join(BY_NAME)}.") from None
    return format_class(encoding="utf-8").create_dataset(data)


def run_import(resource, dataset, *, dry_run, user=None, via="admin", file_name="", file_format=""):
    """Import ``dataset`` with ``resource`` (bound to its alias); nothing is written unless every row is valid."""
    return resource.import_data(
        dataset, dry_run=dry_run, raise_errors=False, user=user, via=via, file_name=file_name, file_format=file_format
    )


def record_result(record, result):
    """Fill an audit record from an import result (rejected imports wrote nothing)."""
    totals = result.totals
    record.rows_total = result.total_rows
    record.rows_new, record.rows_updated = totals["new"], totals["update"]
    record.rows_deleted, record.rows_skipped = totals["delete"], totals["skip"]
    record.rows_invalid = totals["invalid"] + totals["error"]
    if result.problems:
        record.outcome = TransferRecord.Outcome.REJECTED
        record.message = "\n".join(str(p) for p in result.problems[:50])
    else:
        record.outcome = TransferRecord.Outcome.SUCCESS


def problems(result, resource, dataset):
    """Every error of an import result, each with its file row, column and value."""
    columns = {name: field.column_name for name, field in resource.fields.items()}
    columns.update({field.attribute: field.column_name for field in resource.fields.values() if field.attribute})
    source_rows = getattr(dataset, "source_rows", None)
    headers = dataset.headers or []

    def file_row(number):
        if source_rows and 0 < number <= len(source_rows):
            return source_rows[number - 1]
        return number + 1  # header is row 1

    def cell(number, column):
        if column in headers and 0 < number <= dataset.height:
            return dataset[number - 1][headers.index(column)]
        return None

    found = []
    for error in result.base_errors:
        found.append(Problem(None, None, None, _message(error.error)))
    for number, errors in result.row_errors():
        for error in errors:
            found.append(Problem(file_row(number), None, None, _message(error.error)))
    for row in result.invalid_rows:
        for attribute, messages in row.error_dict.items():
            column = None if attribute == NON_FIELD_ERRORS else columns.get(attribute, attribute)
            for message in messages:
                found.append(Problem(file_row(row.number), column, cell(row.number, column), message))
    return found


def _message(error):
    """A database or validation error as a sentence (no traceback, no SQL)."""
    if hasattr(error, "messages"):
        return " ".join(error.messages)
    if isinstance(error, DatabaseError):
        return f"The database refused the rows: {error}. Nothing was imported."
    return str(error) or type(error).__name__
