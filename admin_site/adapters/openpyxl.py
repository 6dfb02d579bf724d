"""The private names of openpyxl that the console uses, each behind a small function of ours."""

import contextlib
import io

from openpyxl import Workbook
from openpyxl.worksheet import _writer

from admin_site.adapters import Private


def _sample_writer():
    """A finished sheet writer into memory (no temporary file), to look for the writer's instance attributes on."""
    writer = _writer.WorksheetWriter(Workbook(write_only=True).create_sheet(), out=io.BytesIO())
    writer.close()
    return writer


#: Checked against the installed version by tests/test_adapters.py.
PRIVATE_NAMES = [
    # --- exports ---
    Private("openpyxl.worksheet._write_only:WriteOnlyWorksheet", "_writer"),
    Private("openpyxl.worksheet._writer:WorksheetWriter", "out", sample=_sample_writer),
    Private("openpyxl.worksheet._writer:WorksheetWriter", "cleanup", ("self",)),
    Private("openpyxl.worksheet._writer", "ALL_TEMP_FILES"),
]


# --- exports ---


def sheet_file(sheet):
    """The temporary file a write-only sheet writes its XML into (None before the first row).

    Complete once ``sheet.close()`` has run, and read by ``Workbook.save()``,
    which zips it into the workbook and removes it.
    """
    writer = sheet._writer
    return None if writer is None else writer.out


def discard_sheet(sheet):
    """Remove a write-only sheet's temporary file when its workbook will never be saved (an abandoned export).

    openpyxl removes the file when the workbook is saved, or at interpreter
    exit: a server process would keep every abandoned export's file until then.
    Harmless after a save.
    """
    writer = sheet._writer
    if writer is None:
        return
    with contextlib.suppress(Exception):
        if not sheet.closed:
            sheet.close()
    with contextlib.suppress(FileNotFoundError, ValueError):
        writer.cleanup()  # the workbook's save already removed it when the export completed


def temporary_sheet_files():
    """The temporary sheet files openpyxl holds in this process (for tests that check none is left)."""
    return set(_writer.ALL_TEMP_FILES)
