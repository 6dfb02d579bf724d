"""One import path for the admin, the command line and the benchmark.

``read_dataset`` opens a file as a ``RowStream`` (or raises ``FileFormatError``);
``run_import`` imports it into one alias a chunk of rows at a time inside one
transaction, all or nothing, and records the outcome in the audit trail.  What
it keeps is what a person reads: the counts, the first rows, and the first
``max_problems()`` problems, each with its row, column and a short excerpt of
the value.  Memory and output stay bounded however large or broken the file.
"""

from contextlib import nullcontext
from dataclasses import dataclass

import tablib
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from import_export.results import Result

from admin_site.models import TransferRecord
from admin_site.pinning import using_database
from admin_site.transfers.formats import BY_NAME, FileFormatError, check_size, excerpt
from admin_site.transfers.history import ImportHistory
from admin_site.transfers.records import audited
from admin_site.transfers.rowstates import RowStates

#: Rows handed to django-import-export at a time (a multiple of the resources' batch size).
CHUNK_ROWS = 2000
#: Rows shown in the import preview (the counts always cover the whole file).
PREVIEW_ROWS = 200
#: Up to this many rows an import keeps each row's result (the admin's history entries); above, none.
LOG_ROWS_MAX = 10_000
#: Longest excerpt of a cell, and of a message, that a problem quotes.
VALUE_EXCERPT, MESSAGE_EXCERPT = 80, 1000


#: A confirm whose file no longer updates every row its preview showed (one was deleted since).
STALE_PREVIEW = (
    "Some rows the preview showed as updates were deleted or changed by someone else since. "
    "Nothing was imported: import the file again to preview it against the rows stored now."
)


#: Errors that are the database's fault (a lost connection, a server gone away, a lock time-out), never the
#: file's: an import stops at the first and says which database failed.  Integrity and data errors are the file's.
DATABASE_FAILURES = (OperationalError, InterfaceError)


def database_failure(result):
    """The first database failure among a chunk's errors, or None."""
    errors = [error.error for error in result.base_errors]
    errors += [error.error for _, row_errors in result.row_errors() for error in row_errors]
    return next((error for error in errors if isinstance(error, DATABASE_FAILURES)), None)


def max_problems():
    """Problems collected before checking stops (``CONSOLE_IMPORT_MAX_PROBLEMS``)."""
    return getattr(settings, "CONSOLE_IMPORT_MAX_PROBLEMS", 1000)


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
        value = "" if self.value in (None, "") else f" (value {self.value!r})"
        return f"{where}{value}: {self.message}"


def read_dataset(data, file_format, *, max_bytes=None):
    """Open ``data`` (bytes, or a file's path) as ``file_format`` ("csv", "xlsx", …): a ``RowStream``.

    Raises FileFormatError for a file over the size limit, an unknown format,
    or a file whose header row cannot be read.
    """
    size = len(data) if isinstance(data, (bytes, bytearray)) else data.stat().st_size
    check_size(size, max_bytes)
    try:
        format_class = BY_NAME[file_format]
    except KeyError:
        raise FileFormatError(
            f"Unknown format {excerpt(file_format, 20)!r}; use one of {', '.join(BY_NAME)}."
        ) from None
    return format_class(encoding="utf-8").create_dataset(data)


class ImportSummary(Result):
    """django-import-export's ``Result`` for a whole file, holding only what is shown or logged.

    ``rows`` holds the first ``keep_rows`` row results (``rows_complete``
    says whether that is every row); ``problems`` the first
    ``max_problems()``, with ``problems_over`` counting those found beyond,
    and ``stopped_at`` the file row where checking stopped because of them.
    """

    def __init__(self, keep_rows, problem_cap):
        super().__init__()
        self.keep_rows, self.problem_cap = keep_rows, problem_cap
        self.rows_complete = True
        self.problems, self.problems_over, self.stopped_at = [], 0, None
        #: Columns of the file that are not imported (fields set by the console, such as timestamps).
        self.ignored_columns = []

    def has_errors(self):
        return bool(self.problems)

    def has_validation_errors(self):
        return bool(self.problems)

    @property
    def problems_full(self):
        return len(self.problems) >= self.problem_cap

    def add(self, result, found):
        """Count a chunk's result; keep its first rows and its problems while there is room."""
        for kind, count in result.totals.items():
            self.totals[kind] += count
        self.total_rows += result.total_rows
        self.diff_headers = result.diff_headers
        if self.rows_complete:
            room = self.keep_rows - len(self.rows)
            self.rows.extend(result.rows[:room])
            if len(result.rows) > room:
                self.rows_complete = False
                if self.keep_rows >= LOG_ROWS_MAX:
                    self.rows = []  # kept only to be logged, and too many to log
        self.add_problems(found)

    def add_problems(self, found):
        room = self.problem_cap - len(self.problems)
        self.problems.extend(found[:room])
        self.problems_over += max(0, len(found) - room)


class _DatasetRows:
    """An in-memory tablib Dataset with ``RowStream``'s interface (tests, the benchmark)."""

    def __init__(self, dataset):
        self.headers = dataset.headers or []
        self.dataset = dataset

    def chunks(self, size):
        rows = getattr(self.dataset, "source_rows", None) or range(2, self.dataset.height + 2)
        for start in range(0, self.dataset.height, size):
            chunk = tablib.Dataset(*self.dataset[start : start + size], headers=self.headers)
            chunk.source_rows = list(rows[start : start + size])
            yield chunk


def run_import(
    resource,
    rows,
    *,
    dry_run,
    user=None,
    via="admin",
    file_name="",
    file_format="",
    keep_rows=None,
    row_states=None,
    on_chunk=None,
    **kwargs,
):
    """Import ``rows`` (a ``RowStream`` or Dataset) with ``resource`` into its alias, all or nothing.

    The chunks share one transaction on the alias; any problem rolls all of
    it back, and a dry run always does.  A dry run checks on to
    ``max_problems()``; an import stops at the first problem, since nothing
    will be written anyway.  ``keep_rows`` row results are kept (the
    preview's rows, or every row for the admin's history).  A preview notes
    the rows the file updates in ``summary.row_states``; an import given the
    preview's ``row_states`` refuses rows changed since (``rowstates``).
    ``on_chunk(summary, record)`` is called before the first chunk and after
    each (the background worker's progress); what it raises rolls the import
    back like any failure (a cancel).
    """
    if isinstance(rows, tablib.Dataset):
        rows = _DatasetRows(rows)
    if keep_rows is None:
        keep_rows = PREVIEW_ROWS if dry_run else LOG_ROWS_MAX
    summary = ImportSummary(keep_rows, max_problems())
    changes = import_history(resource, user, dry_run, kwargs)
    summary.ignored_columns = resource.ignored_columns(rows.headers)
    resource.row_states = summary.row_states = RowStates() if dry_run else row_states
    audit = (
        nullcontext()
        if dry_run
        else audited(
            "import",
            database=resource.using,
            model=resource._meta.model,
            user=user,
            via=via,
            file_name=file_name,
            file_format=file_format,
        )
    )
    with audit as record:
        with using_database(resource.using), transaction.atomic(using=resource.using):
            resource.start_file()
            chunks = rows.chunks(CHUNK_ROWS)
            try:
                if on_chunk is not None:
                    on_chunk(summary, record)
                for chunk in chunks:
                    if changes is not None:
                        changes.before_chunk(chunk)
                    result = resource.import_chunk(chunk, dry_run=dry_run, user=user, **kwargs)
                    summary.add(result, result.problems)
                    if changes is not None:
                        changes.after_chunk(result)
                    if on_chunk is not None:
                        on_chunk(summary, record)
                    if summary.problems and (not dry_run or summary.problems_full or result.base_errors):
                        # A header problem repeats in every chunk; otherwise say where checking stopped.
                        if not result.base_errors and _has_more(chunks):
                            summary.stopped_at = chunk.source_rows[-1]
                        break
            except FileFormatError as exc:
                summary.add_problems([Problem(None, None, None, excerpt(exc, MESSAGE_EXCERPT))])
            finally:
                chunks.close()
            if not summary.problems and row_states is not None and not row_states.finish():
                summary.add_problems([Problem(None, None, None, STALE_PREVIEW)])
            if dry_run or summary.problems:
                transaction.set_rollback(True, using=resource.using)
        if record is not None:
            record_result(record, summary)
    if changes is not None and not summary.problems:
        changes.write(resource.using, summary, record)
    return summary


def import_history(resource, user, dry_run, kwargs):
    """The history of an import a person makes (``admin_site.history``): None for a preview or a command-line run.

    Row results then keep their instances (the rows' new values).
    """
    if dry_run or user is None or getattr(user, "pk", None) is None:
        return None
    kwargs["retain_instance_in_row_result"] = True
    return ImportHistory(resource, user)


def _has_more(chunks):
    """Whether the file goes on after the chunks read so far (a file error further on counts as more)."""
    try:
        return next(chunks, None) is not None
    except FileFormatError:
        return True


def record_result(record, result):
    """Fill an audit record from an import result: a rejected import wrote nothing, so it counts no rows as written."""
    totals = result.totals
    record.rows_total = result.total_rows
    record.rows_invalid = totals["invalid"] + totals["error"]
    if result.problems:
        record.outcome = TransferRecord.Outcome.REJECTED
        record.rows_new = record.rows_updated = record.rows_deleted = record.rows_skipped = 0
        record.message = "\n".join(str(p) for p in result.problems[:50])
        if len(result.problems) > 50 or result.problems_over:
            record.message += "\n… and more problems; nothing was imported."
    else:
        record.outcome = TransferRecord.Outcome.SUCCESS
        record.rows_new, record.rows_updated = totals["new"], totals["update"]
        record.rows_deleted, record.rows_skipped = totals["delete"], totals["skip"]


def problems(result, resource, dataset):
    """Every error of one chunk's result, each with its file row, column and a short excerpt of the value."""
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
            value = dataset[number - 1][headers.index(column)]
            return excerpt(value, VALUE_EXCERPT) if isinstance(value, str) else value
        return None

    def problem(row, column, value, message):
        return Problem(row, column, value, excerpt(message, MESSAGE_EXCERPT))

    found = []
    for error in result.base_errors:
        found.append(problem(None, None, None, _message(error.error)))
    for number, errors in result.row_errors():
        for error in errors:
            found.append(problem(file_row(number), None, None, _message(error.error)))
    for row in result.invalid_rows:
        for attribute, messages in row.error_dict.items():
            column = None if attribute == NON_FIELD_ERRORS else columns.get(attribute, attribute)
            for message in messages:
                found.append(problem(file_row(row.number), column, cell(row.number, column), message))
    return found


def _message(error):
    """A database or validation error as a sentence (no traceback, no SQL)."""
    if hasattr(error, "messages"):
        return " ".join(error.messages)
    if isinstance(error, DatabaseError):
        return f"The database refused the rows: {error}. Nothing was imported."
    return str(error) or type(error).__name__
