"""Streaming exports: CSV, TSV, JSON and XLSX of any size, with flat memory.

Stock django-import-export builds the whole ``tablib.Dataset`` in memory
before the first byte goes out.  ``stream_export`` writes the same columns as
the resource (headers, export order, the widgets' rendering, ``dehydrate_``
methods) chunk by chunk, as an iterator of bytes for a
``StreamingHttpResponse`` or a file:

- Rows are read as ``values_list`` of the fields' attribute paths and rendered
  by the widgets' rules, fast-pathed for the stock widgets (same strings, so a
  CSV round-trips through the import).  Fields that need an instance
  (``dehydrate_<field>``, properties, custom ``Field`` classes) get instances,
  and many-to-many columns their values, with one query per chunk of rows.
- On MySQL/MariaDB ``QuerySet.iterator()`` does not stream: PyMySQL's default
  cursor reads the whole result into the client.  The rows come through an
  unbuffered server-side cursor (``SSCursor``) on a separate connection to
  the same alias, closed when the iterator ends, is closed or is garbage
  collected (an abandoned download).  Django compiles the query and converts
  the values there too (``admin_site.adapters.django.compile_values_list``).
  Inside a transaction the export stays on the transaction's connection,
  which alone sees its uncommitted rows, and is buffered there.  Other
  backends read ``values_list(...).iterator(chunk_size=...)``.
- CSV/TSV text cells are guarded against formula injection (``escape_formula``);
  XLSX text cells are typed as strings, which a spreadsheet never runs, and
  hold exactly the text.
- CSV/TSV: UTF-8 without a BOM (a BOM breaks naive consumers and the
  console's import takes UTF-8 either way), ``\\r\\n`` line ends, as tablib
  writes them.
- JSON: an array of objects holding the strings import-export renders (not
  JSON numbers), so a JSON export imports back exactly; not formula-escaped,
  since JSON is not opened as a spreadsheet.
- XLSX: typed cells (numbers, real dates), written by openpyxl's write-only
  workbook into temporary files and streamed out once complete; capped at
  ``settings.CONSOLE_XLSX_MAX_ROWS`` rows (see ``stream_export``).

This module holds the API and the file writers; ``rows`` reads the rows (the
query, the server-side cursor, the columns plan) and ``cells`` renders values.
"""

import contextlib
import csv
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass

from django.conf import settings
from openpyxl import Workbook

from admin_site.adapters.django import is_model_queryset
from admin_site.adapters.openpyxl import discard_sheet, sheet_file
from admin_site.pinning import pinned_iterator, read_database, using_database
from admin_site.transfers.exports.cells import CSV, NATIVE, TEXT, escape_formula, text_cell
from admin_site.transfers.exports.rows import _Plan, open_stream_connection

__all__ = ["Export", "escape_formula", "open_stream_connection", "stream_export", "xlsx_max_rows"]


#: Default cap on XLSX rows (``settings.CONSOLE_XLSX_MAX_ROWS`` overrides it).
XLSX_MAX_ROWS = 200_000
#: The built XLSX file stays in memory up to this size, then spills to disk.
XLSX_SPOOL_BYTES = 8 * 1024 * 1024
XLSX_READ_BYTES = 256 * 1024

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "tsv": ("text/tab-separated-values; charset=utf-8", "tsv"),
    "json": ("application/json", "json"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


@dataclass(eq=False)
class Export:
    """One export in progress: iterate ``chunks`` (bytes) into a response or a file.

    ``notice`` is a message for the user (None when there is nothing to say),
    ``row_limit`` the cap applied (XLSX only), ``rows`` the data rows written
    so far (final once ``chunks`` is exhausted: use it for the audit record).
    Closing ``chunks`` (or dropping it) releases the database connection.
    """

    chunks: object
    content_type: str
    extension: str
    notice: str | None = None
    row_limit: int | None = None
    rows: int = 0

    def close(self):
        self.chunks.close()


def xlsx_max_rows():
    return getattr(settings, "CONSOLE_XLSX_MAX_ROWS", XLSX_MAX_ROWS)


def stream_export(resource, queryset, file_format, selected_fields=None):
    """Export ``queryset`` through ``resource`` as ``file_format``, streamed.

    The queryset is honoured as given (filters, search, ordering, a proxy's
    manager) on ``resource.using``; ``selected_fields`` limits the columns as
    import-export's export form does (resource export order).  The headers
    are written at once, the rows while ``chunks`` is iterated.

    XLSX exports are cut at ``xlsx_max_rows()`` rows, with ``notice`` saying
    so: a workbook is built whole before it can be sent (and Excel stops at
    about a million rows anyway), while CSV streams any size.  Cutting rather
    than refusing gives the user the file they can still use, and the notice
    says how to get every row.
    """
    if file_format not in FORMATS:
        raise ValueError(f"Unknown export format {file_format!r}: use one of {', '.join(FORMATS)}.")
    if not is_model_queryset(queryset):
        raise TypeError("stream_export() needs a model QuerySet (not values() or a list).")
    alias = resource.using
    content_type, extension = FORMATS[file_format]
    export = Export(chunks=iter(()), content_type=content_type, extension=extension)
    with using_database(alias):
        # The panel's database, or its replica where the running view reads one (admin_site.pinning).
        reading = read_database(alias)
        queryset = queryset.using(reading)
        resource.before_export(queryset)
        queryset = resource.filter_export(queryset).using(reading)
        headers = resource.get_export_headers(selected_fields)
        plan = _Plan(resource, queryset, selected_fields)
        if file_format == "xlsx":
            export.row_limit = xlsx_max_rows()
            total = queryset.count()
            if total > export.row_limit:
                export.notice = (
                    f"This XLSX file holds the first {export.row_limit:,} of {total:,} rows. "
                    "Export as CSV to get every row: CSV streams any size."
                )
            plan.limit(export.row_limit)
    writers = {
        "csv": lambda: _delimited(headers, plan, export, ","),
        "tsv": lambda: _delimited(headers, plan, export, "\t"),
        "json": lambda: _json(headers, plan, export),
        "xlsx": lambda: _xlsx(headers, plan, export, _sheet_title(queryset.model)),
    }
    export.chunks = pinned_iterator(writers[file_format](), alias)
    return export


# Writers ---------------------------------------------------------------------------


def _delimited(headers, plan, export, delimiter):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    yield _drain(buffer)
    for rows, count in plan.rendered(CSV):
        writer.writerows(rows)
        export.rows += count
        yield _drain(buffer)


def _drain(buffer):
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


def _json(headers, plan, export):
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    separator = ""
    yield b"["
    for rows, count in plan.rendered(TEXT):
        text = ",\n".join(dumps(dict(zip(headers, row, strict=True))) for row in rows)
        yield (separator + text).encode("utf-8")
        separator = ",\n"
        export.rows += count
    yield b"]"


def _xlsx(headers, plan, export, title):
    """Rows go into openpyxl's temporary sheet file, then the zipped workbook streams out.

    While the workbook is being built, an empty chunk follows each chunk of
    rows, so a consumer can show progress (``export.rows``).
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    built = None
    try:
        sheet.append([text_cell(str(header), sheet) for header in headers])
        for rows, count in plan.rendered(NATIVE, sheet):
            for row in rows:
                sheet.append(row)
            export.rows += count
            yield b""
        sheet.close()
        _keep_carriage_returns(sheet_file(sheet))
        built = tempfile.SpooledTemporaryFile(max_size=XLSX_SPOOL_BYTES)
        workbook.save(built)
        built.seek(0)
        while block := built.read(XLSX_READ_BYTES):
            yield block
    finally:
        if built is not None:
            built.close()
        discard_sheet(sheet)


def _keep_carriage_returns(path):
    """Write each CR of the sheet's XML as ``&#13;``, which every XML parser reads back as a CR.

    openpyxl (without lxml) writes a CR in a text cell as it is, and XML
    parsers turn a literal CR into LF: "\\rhello" would read back as
    "\\nhello".  Attribute values already have theirs escaped and markup has
    none, so every CR left in the file is in a cell's text.  The file is
    rewritten only if it holds one.
    """
    with open(path, "rb") as sheet_xml:
        if not any(b"\r" in block for block in iter(lambda: sheet_xml.read(XLSX_READ_BYTES), b"")):
            return
    escaped_path = f"{path}.cr"
    try:
        with open(path, "rb") as sheet_xml, open(escaped_path, "wb") as escaped:
            while block := sheet_xml.read(XLSX_READ_BYTES):
                escaped.write(block.replace(b"\r", b"&#13;"))
        os.replace(escaped_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(escaped_path)


def _sheet_title(model):
    return re.sub(r"[\\/?*\[\]:]", " ", str(model._meta.verbose_name_plural).capitalize())[:31] or "Export"
