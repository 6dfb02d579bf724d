"""Import file formats that reject bad files with a message a person can act on.

django-import-export's formats hand files to tablib, which reports a Latin-1
CSV as "'UnicodeDecodeError' encountered", pads ragged rows silently or not
at all, and opens any zip as XLSX; and it holds the whole file in memory.
These subclasses keep the package's format API (``create_dataset``), but it
returns a ``RowStream`` that reads the file a chunk of rows at a time, and
raise ``FileFormatError`` naming the line, row or cell at fault.  Messages
quote at most a short excerpt of anything the file holds.
"""

import contextlib
import csv
import io
import itertools
import json
import zipfile

import tablib
from django.conf import settings
from import_export.formats import base_formats

#: Largest uncompressed size and compression ratio accepted for an XLSX (zip bomb guard).
XLSX_MAX_UNCOMPRESSED = 512 * 1024 * 1024
XLSX_MAX_RATIO = 200
#: Cells an XLSX import reads at most: about what a 50 MB CSV can hold.
XLSX_MAX_CELLS = 20_000_000
#: More columns than any model has: a header row past this is refused without echoing it.
MAX_COLUMNS = 1000
#: Longest JSON object (one row) accepted, in characters.
JSON_MAX_OBJECT_CHARS = 1024 * 1024


class FileFormatError(ValueError):
    """The file cannot be read as the chosen format; the message says where and why."""


def max_upload_bytes():
    return getattr(settings, "CONSOLE_IMPORT_MAX_BYTES", 50 * 1024 * 1024)


def check_size(size, limit=None):
    """Refuse a file over ``limit`` bytes (``CONSOLE_IMPORT_MAX_BYTES``) before anything reads it."""
    limit = max_upload_bytes() if limit is None else limit
    if size > limit:
        raise FileFormatError(f"The file is {size / 1_048_576:.1f} MB; the limit is {limit / 1_048_576:.0f} MB.")


def excerpt(text, limit=60):
    """At most ``limit`` characters of ``text`` for a message: hostile files have long cells and names."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RowStream:
    """A file's rows, read a chunk at a time: memory does not grow with the file.

    Made by a format's ``create_dataset`` from bytes or from the stored
    upload's path.  The header row and the first data row are read at once,
    so an empty, mis-encoded or mis-delimited file fails before any import
    starts; a problem further down raises ``FileFormatError`` from
    ``chunks()``, naming its line, row or object.
    """

    def __init__(self, source, rows, origin):
        self._open = source if callable(source) else _opener(source)
        self._rows = rows  # binary file -> iterator of (position, cells), the header first
        self.origin = origin
        self._pending = self._read()
        self.headers = next(self._pending)
        try:
            self._first = next(self._pending)
        except StopIteration:
            raise FileFormatError("The file has a header row but no data rows.") from None

    def __bool__(self):
        return True  # a stream exists only once it has a data row

    def _read(self):
        """The header (once), then each data row as ``(position, cells)``, from a fresh read of the file."""
        with self._open() as binary:
            rows = iter(self._rows(binary))
            try:
                _, headers = next(rows)
            except StopIteration:
                raise FileFormatError("The file is empty: it has no header row.") from None
            if len(headers) > MAX_COLUMNS:
                raise FileFormatError(
                    f"The header row has {len(headers):,} columns; an import takes at most {MAX_COLUMNS:,}."
                )
            headers = [str(h).strip() if h is not None else "" for h in headers]
            if not any(headers):
                raise FileFormatError("The header row is empty.")
            yield headers
            width = len(headers)
            for number, row in rows:
                if not any(cell not in (None, "") for cell in row):
                    continue  # blank lines, as spreadsheets leave them
                if len(row) != width:
                    raise FileFormatError(
                        f"{self.origin.capitalize()} {number} has {len(row):,} cells but the header row has "
                        f"{width}: {'too many' if len(row) > width else 'too few'} values "
                        "(check for a stray delimiter or quote)."
                    )
                yield number, row

    def chunks(self, size):
        """tablib Datasets of at most ``size`` rows; each has ``source_rows``, the rows' positions in the file."""
        source, first = self._pending, [self._first]
        if source is None:
            source, first = self._read(), []
            next(source)  # the header, checked when the stream was made
        self._pending = None
        rows = itertools.chain(first, source)
        with contextlib.closing(source):
            while True:
                batch = list(itertools.islice(rows, size))
                if not batch:
                    return
                dataset = tablib.Dataset(headers=self.headers)
                dataset.source_rows = []
                for number, row in batch:
                    dataset.append(list(row))
                    dataset.source_rows.append(number)
                yield dataset


def _opener(source):
    if isinstance(source, (bytes, bytearray)):
        return lambda: io.BytesIO(source)
    return lambda: open(source, "rb")  # a path


def _text(binary, size=None):
    """The file as text, strict UTF-8 (a BOM is fine), in lines or pieces of ``size`` characters.

    A byte that is not UTF-8 is named with its line.
    """
    start = binary.read(4)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileFormatError(
            "The file is UTF-16 encoded. Save it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again."
        )
    binary.seek(0)
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")
    try:
        if size is not None:
            yield from iter(lambda: text.read(size), "")
            return
        for number, line in enumerate(text, 1):
            if "\x00" in line:
                raise FileFormatError(f"The file contains a NUL byte on line {number}; it is not a text file.")
            yield line
    except UnicodeDecodeError:
        # The decoder reads ahead, so find the line again, one line at a time (UTF-8 never splits b"\n").
        binary.seek(0)
        for line_number, line in enumerate(binary, 1):
            try:
                line.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise FileFormatError(
                    f"The file is not valid UTF-8: byte 0x{line[exc.start]:02x} on line {line_number} "
                    "cannot be decoded (it looks like Latin-1/Windows-1252). "
                    "Save it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again."
                ) from None
        raise FileFormatError("The file is not valid UTF-8.") from None


class CSV(base_formats.CSV):
    delimiter = ","

    def create_dataset(self, in_stream, **kwargs):
        """A ``RowStream`` over ``in_stream`` (bytes, or the path of a stored upload)."""
        return RowStream(in_stream, self.rows, "line")

    def rows(self, binary):
        reader = csv.reader(_text(binary), delimiter=self.delimiter)
        other = ";" if self.delimiter == "," else ","
        try:
            for row in reader:
                if reader.line_num == 1 and len(row) == 1 and other in row[0]:
                    raise FileFormatError(
                        f"The header row is separated by “{other}”, not “{self.delimiter}”. "
                        f"Export the file as {self.get_title().upper()} with “{self.delimiter}” between values."
                    )
                yield reader.line_num, row
        except csv.Error as exc:
            raise FileFormatError(
                f"Line {max(reader.line_num, 1)} is not valid {self.get_title().upper()}: {excerpt(exc, 120)}."
            ) from None


class TSV(CSV):
    TABLIB_MODULE = "tablib.formats._tsv"
    CONTENT_TYPE = "text/tab-separated-values"
    delimiter = "\t"


class JSON(base_formats.JSON):
    def create_dataset(self, in_stream, **kwargs):
        """A ``RowStream`` over a list of objects; the first object's keys are the columns."""
        return RowStream(in_stream, self.rows, "object")

    def rows(self, binary):
        headers = None
        for number, item in enumerate(_json_objects(_text(binary, 65536)), 1):
            if not isinstance(item, dict):
                raise FileFormatError("A JSON import must be a list of objects, one object per row: [{…}, {…}].")
            if headers is None:
                headers = list(item)
                yield 0, headers
            elif not item.keys() <= set(headers):
                extra = ", ".join(excerpt(k, 40) for k in list(item.keys() - set(headers))[:5])
                raise FileFormatError(
                    f"Object {number} has keys the first object has not ({extra}): "
                    "the first object must name every column."
                )
            if not all(_is_unicode(text) for text in (*item, *item.values()) if isinstance(text, str)):
                # Named without its text: a page holding it could not be encoded either (a 500).
                raise FileFormatError(
                    f"Object {number} holds an escape that is no character (an unpaired surrogate such as "
                    "\\ud800): no column can store it."
                )
            for key, value in item.items():
                if isinstance(value, (dict, list)):
                    raise FileFormatError(
                        f"Row {number}, column “{excerpt(key, 40)}”: nested objects or lists cannot be imported."
                    )
            yield number, [item.get(key) for key in headers]
        if headers is None:
            raise FileFormatError("The JSON list is empty: there are no rows to import.")


def _is_unicode(text):
    """Whether ``text`` encodes as UTF-8: JSON decodes an unpaired ``\\ud800`` escape into a str that does not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_objects(pieces):
    """The items of a JSON list, decoded one at a time from pieces of text (the list is never whole in memory)."""
    decoder = json.JSONDecoder()
    pieces = iter(pieces)
    buffer, position, line, ended = "", 0, 1, False

    def fill():
        nonlocal buffer, position, ended
        piece = next(pieces, "")
        if not piece:
            ended = True
        buffer, position = buffer[position:] + piece, 0

    def next_char():
        """Skip white space; the next character, or "" at the end of the file."""
        nonlocal position, line
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                line += buffer[position] == "\n"
                position += 1
            if position < len(buffer):
                return buffer[position]
            if ended:
                return ""
            fill()

    def fail(message):
        raise FileFormatError(f"The file is not valid JSON: {message} at line {line}.")

    char = next_char()
    if not char:
        raise FileFormatError("The file is empty.")
    if char != "[":
        raise FileFormatError("A JSON import must be a list of objects, one object per row: [{…}, {…}].")
    position += 1
    if next_char() == "]":
        position += 1
    else:
        while True:
            if not next_char():
                fail("the list is not closed")
            while True:
                try:
                    item, end = decoder.raw_decode(buffer, position)
                    break
                except json.JSONDecodeError as exc:
                    if ended:
                        line += buffer.count("\n", position, exc.pos)
                        fail(exc.msg)
                    if len(buffer) - position > JSON_MAX_OBJECT_CHARS:
                        raise FileFormatError(
                            f"The object at line {line} is longer than {JSON_MAX_OBJECT_CHARS:,} characters."
                        ) from None
                    fill()
            line += buffer.count("\n", position, end)
            position = end
            yield item
            char = next_char()
            if char == ",":
                position += 1
            elif char == "]":
                position += 1
                break
            elif not char:
                fail("the list is not closed")
            else:
                fail("expected “,” or “]” after an object")
    if next_char():
        fail("extra data after the list")


class XLSX(base_formats.XLSX):
    def create_dataset(self, in_stream, **kwargs):
        """A ``RowStream`` over the first sheet, read row by row (openpyxl's read-only mode)."""
        return RowStream(in_stream, self.rows, "row")

    def rows(self, binary):
        import openpyxl

        check_xlsx(binary)
        try:
            workbook = openpyxl.load_workbook(binary, read_only=True, data_only=False)
        except Exception as exc:
            raise FileFormatError(f"The file is not a readable XLSX workbook ({type(exc).__name__}).") from None
        try:
            sheet = workbook.worksheets[0]
            # The sheet's declared size is the file's word, and a single cell at XFD1048576 makes it a
            # billion cells: read the rows as they are instead (a gap row is empty, a row ends at its last cell).
            sheet.reset_dimensions()
            yield from _squared(_cell_values(sheet.iter_rows()))
        finally:
            workbook.close()


def _cell_values(rows):
    """Each row's values; a formula cell is an error (its value is whatever the spreadsheet last computed).

    At most ``XLSX_MAX_CELLS`` cells are read, gaps within rows included: a
    small file can place cells so that the rows between them are wide.
    """
    cells = 0
    for number, row in enumerate(rows, 1):
        cells += len(row)
        if cells > XLSX_MAX_CELLS:
            raise FileFormatError(
                f"The sheet holds more than {XLSX_MAX_CELLS:,} cells (counting the empty ones between filled "
                f"ones) by row {number:,}: split it, or save it as CSV."
            )
        values = []
        for cell in row:
            if getattr(cell, "data_type", None) == "f":
                raise FileFormatError(
                    f"Row {number}, cell {cell.coordinate} holds a formula ({excerpt(cell.value, 40)}): an import "
                    "takes values. In the spreadsheet, copy the cells and paste them as values, then upload again."
                )
            values.append(cell.value)
        yield values


def _squared(rows):
    """Sheet rows numbered from 1, trailing empty cells dropped or filled to the header's width.

    Spreadsheets omit empty cells at the end of a row (and some writers pad
    rows past the last column): only a non-empty cell beyond the header counts.
    """
    width = None
    for number, row in enumerate(rows, 1):
        while row and row[-1] in (None, "") and (width is None or len(row) > width):
            row.pop()
        if width is None:
            width = len(row)
        elif len(row) < width:
            row += [None] * (width - len(row))
        yield number, row


def check_xlsx(binary):
    """Reject truncated files and zip bombs before openpyxl inflates anything."""
    size = binary.seek(0, io.SEEK_END)
    binary.seek(0)
    try:
        archive = zipfile.ZipFile(binary)
    except zipfile.BadZipFile:
        raise FileFormatError(
            "The file is not a complete XLSX workbook (it may be truncated, or another format)."
        ) from None
    names = archive.namelist()
    if "[Content_Types].xml" not in names:
        raise FileFormatError("The file is a zip archive but not an XLSX workbook.")
    total = sum(info.file_size for info in archive.infolist())
    if total > XLSX_MAX_UNCOMPRESSED or total > XLSX_MAX_RATIO * max(size, 1):
        raise FileFormatError(
            f"The workbook would expand to {total // (1024 * 1024)} MB: refused as a possible zip bomb."
        )
    broken = archive.testzip()
    if broken:
        raise FileFormatError(f"The workbook is damaged ({excerpt(broken)} is corrupt).")
    binary.seek(0)


#: What the console offers, in menu order.
IMPORT_FORMATS = [CSV, XLSX, JSON, TSV]
EXPORT_FORMATS = [CSV, XLSX, JSON, TSV]
BY_NAME = {"csv": CSV, "xlsx": XLSX, "json": JSON, "tsv": TSV}
