"""Import file formats that reject bad files with a message a person can act on.

django-import-export's formats hand files to tablib, which reports a Latin-1
CSV as "'UnicodeDecodeError' encountered", pads ragged rows silently or not
at all, and opens any zip as XLSX.  These subclasses keep the package's
format API (``create_dataset``) and raise ``FileFormatError`` naming the
line, row or cell at fault; nothing has been imported at that point.
"""

import csv
import io
import json
import zipfile

import tablib
from django.conf import settings
from import_export.formats import base_formats

from admin_site.bulk import collector_paused

#: Largest uncompressed size and compression ratio accepted for an XLSX (zip bomb guard).
XLSX_MAX_UNCOMPRESSED = 512 * 1024 * 1024
XLSX_MAX_RATIO = 200


class FileFormatError(ValueError):
    """The file cannot be read as the chosen format; the message says where and why."""


def max_upload_bytes():
    return getattr(settings, "CONSOLE_IMPORT_MAX_BYTES", 50 * 1024 * 1024)


def check_size(size):
    """Refuse a file over ``CONSOLE_IMPORT_MAX_BYTES`` before anything reads it."""
    if size > max_upload_bytes():
        raise FileFormatError(
            f"The file is {size / 1_048_576:.1f} MB; the limit is {max_upload_bytes() / 1_048_576:.0f} MB."
        )


def decode_text(data):
    """Strict UTF-8 (a BOM is fine); anything else is named, with its line."""
    if isinstance(data, str):
        text = data
    else:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise FileFormatError(
                "The file is UTF-16 encoded. Save it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again."
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise FileFormatError(
                f"The file is not valid UTF-8: byte 0x{data[exc.start]:02x} on line {line} "
                "cannot be decoded (it looks like Latin-1/Windows-1252). "
                "Save it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again."
            ) from None
    if not text.strip():
        raise FileFormatError("The file is empty.")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise FileFormatError(f"The file contains a NUL byte on line {line}; it is not a text file.")
    return text


def rows_to_dataset(numbered_rows, origin="row"):
    """A tablib Dataset from (position, cells) pairs: a header row, then rows of exactly its width.

    ``origin`` names the position for messages: "line", "row" or "object".
    """
    rows = iter(numbered_rows)
    try:
        _, headers = next(rows)
    except StopIteration:
        raise FileFormatError("The file is empty: it has no header row.") from None
    headers = [str(h).strip() if h is not None else "" for h in headers]
    if not any(headers):
        raise FileFormatError("The header row is empty.")
    dataset = tablib.Dataset(headers=headers)
    width = len(headers)
    # Where each data row stands in the file (the header is 1), for error messages.
    dataset.source_rows = []
    with collector_paused():
        for number, row in rows:
            if not any(cell not in (None, "") for cell in row):
                continue  # blank lines, as spreadsheets leave them
            if len(row) != width:
                raise FileFormatError(
                    f"{origin.capitalize()} {number} has {len(row)} cells but the header row has {width}: "
                    f"{'too many' if len(row) > width else 'too few'} values (check for a stray delimiter or quote)."
                )
            dataset.append(list(row))
            dataset.source_rows.append(number)
    if not dataset.height:
        raise FileFormatError("The file has a header row but no data rows.")
    return dataset


class CSV(base_formats.CSV):
    delimiter = ","

    def create_dataset(self, in_stream, **kwargs):
        text = decode_text(in_stream)
        first_line = text.split("\n", 1)[0]
        other = ";" if self.delimiter == "," else ","
        if self.delimiter not in first_line and other in first_line:
            raise FileFormatError(
                f"The header row is separated by “{other}”, not “{self.delimiter}”. "
                f"Export the file as {self.get_title().upper()} with “{self.delimiter}” between values."
            )
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
            return rows_to_dataset(((reader.line_num, row) for row in reader), "line")
        except csv.Error as exc:
            raise FileFormatError(f"The file is not valid {self.get_title().upper()}: {exc}.") from None


class TSV(CSV):
    TABLIB_MODULE = "tablib.formats._tsv"
    CONTENT_TYPE = "text/tab-separated-values"
    delimiter = "\t"


class JSON(base_formats.JSON):
    def create_dataset(self, in_stream, **kwargs):
        try:
            data = json.loads(decode_text(in_stream))
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"The file is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise FileFormatError("A JSON import must be a list of objects, one object per row: [{…}, {…}].")
        if not data:
            raise FileFormatError("The JSON list is empty: there are no rows to import.")
        headers = list(dict.fromkeys(key for item in data for key in item))
        for number, item in enumerate(data, 1):
            for key, value in item.items():
                if isinstance(value, (dict, list)):
                    raise FileFormatError(f"Row {number}, column “{key}”: nested objects or lists cannot be imported.")
        objects = ((number, [item.get(key) for key in headers]) for number, item in enumerate(data, 1))
        return rows_to_dataset([(0, headers), *objects], "object")


class XLSX(base_formats.XLSX):
    def create_dataset(self, in_stream, **kwargs):
        import openpyxl

        check_xlsx(in_stream)
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(in_stream), read_only=True, data_only=True)
        except Exception as exc:
            raise FileFormatError(f"The file is not a readable XLSX workbook ({type(exc).__name__}).") from None
        try:
            sheet = workbook.worksheets[0]
            return rows_to_dataset(_squared(sheet.iter_rows(values_only=True)), "row")
        finally:
            workbook.close()


def _squared(rows):
    """Sheet rows numbered from 1, trailing empty cells dropped or filled to the header's width.

    Spreadsheets omit empty cells at the end of a row (and some writers pad
    rows past the last column): only a non-empty cell beyond the header counts.
    """
    width = None
    for number, row in enumerate(rows, 1):
        row = list(row)
        while row and row[-1] in (None, "") and (width is None or len(row) > width):
            row.pop()
        if width is None:
            width = len(row)
        elif len(row) < width:
            row += [None] * (width - len(row))
        yield number, row


def check_xlsx(data):
    """Reject truncated files and zip bombs before openpyxl inflates anything."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise FileFormatError(
            "The file is not a complete XLSX workbook (it may be truncated, or another format)."
        ) from None
    with archive:
        names = archive.namelist()
        if "[Content_Types].xml" not in names:
            raise FileFormatError("The file is a zip archive but not an XLSX workbook.")
        total = sum(info.file_size for info in archive.infolist())
        if total > XLSX_MAX_UNCOMPRESSED or total > XLSX_MAX_RATIO * max(len(data), 1):
            raise FileFormatError(
                f"The workbook would expand to {total // (1024 * 1024)} MB: refused as a possible zip bomb."
            )
        broken = archive.testzip()
        if broken:
            raise FileFormatError(f"The workbook is damaged ({broken} is corrupt).")


#: What the console offers, in menu order.
IMPORT_FORMATS = [CSV, XLSX, JSON, TSV]
EXPORT_FORMATS = [CSV, XLSX, JSON, TSV]
BY_NAME = {"csv": CSV, "xlsx": XLSX, "json": JSON, "tsv": TSV}
