"""XLSX exports hold text as typed string cells, exactly as stored; CSV keeps its formula guard.

A cell typed as a string (``t="inlineStr"``) is shown as text and never run
as a formula, so the XLSX needs no apostrophe: ``+81 3 5550 0108`` exports
as exactly that.  A CSV has no cell types, so there a spreadsheet would run
``=1+1``: CSV text starting with = + - @ tab or CR keeps its ``'`` guard.

Checked twice: with openpyxl (the cell's value and type) and with what a
spreadsheet makes of the file, LibreOffice Calc converting it to CSV
headless.  A control workbook with a real formula shows that the
LibreOffice check can fail.  Without ``soffice`` (Debian's
``libreoffice-calc``) that check skips, saying so, except under CI (``CI``
set, or ``CONSOLE_E2E_REQUIRED=1`` as ``.ci/run`` sets it), where it fails.
"""

import csv
import io
import os
import shutil
import subprocess

import openpyxl
import pytest

from console.customers.models import Customer
from tests.conftest import ALL_DATABASES
from tests.utils import export_file

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

#: Export form format indexes (the admin's order: CSV, XLSX, ...).
CSV_FORMAT, XLSX_FORMAT = "0", "1"

#: Text a spreadsheet would run, or read as a number or an error, if the cell were not typed as text.
TRICKY = ["=1+1", "+81 3 5550 0108", "-5", "-2+3", "@SUM(A1)", "#N/A", "\tx"]


def make_customers(alias="customers"):
    """One customer per tricky text: in the name, the phone and the notes."""
    for number, text in enumerate(TRICKY):
        Customer(name=text, email=f"tricky{number}@example.com", phone=text, notes=text, country="JP").save(using=alias)


def exported(client, file_format, alias="customers"):
    response = export_file(client, alias, Customer, file_format)
    assert response.status_code == 200 and response.streaming, response.status_code
    return b"".join(response.streaming_content)


def xlsx_cells(data):
    """Header and rows of cells (value and type) of the workbook's sheet."""
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    rows = list(sheet.iter_rows())
    return [cell.value for cell in rows[0]], rows[1:]


def csv_rows(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def test_xlsx_text_cells_are_typed_strings_holding_exactly_the_text(root_client):
    make_customers()
    headers, rows = xlsx_cells(exported(root_client, XLSX_FORMAT))
    by_email = {row[headers.index("email")].value: row for row in rows}
    for number, text in enumerate(TRICKY):
        row = by_email[f"tricky{number}@example.com"]
        for column in ("name", "phone", "notes"):
            cell = row[headers.index(column)]
            assert (cell.value, cell.data_type) == (text, "s"), (column, text)
    # Numbers stay numbers.
    assert {row[headers.index("lifetime_value")].data_type for row in rows} == {"n"}


def test_csv_keeps_the_formula_guard_on_the_same_rows(root_client):
    make_customers()
    headers, rows = csv_rows(exported(root_client, CSV_FORMAT).decode("utf-8"))
    phones = {row[headers.index("email")]: row[headers.index("phone")] for row in rows}
    assert phones["tricky0@example.com"] == "'=1+1"
    assert phones["tricky1@example.com"] == "'+81 3 5550 0108"
    assert phones["tricky2@example.com"] == "'-5"
    assert phones["tricky4@example.com"] == "'@SUM(A1)"
    assert phones["tricky5@example.com"] == "#N/A"  # not a formula: a CSV cell is text anyway


# -- what a spreadsheet makes of it ------------------------------------------------------


def soffice():
    """The LibreOffice binary; skip without it, fail under CI."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found:
        return found
    reason = "soffice (Debian package libreoffice-calc) is not installed: the LibreOffice check cannot run"
    if os.environ.get("CI") or os.environ.get("CONSOLE_E2E_REQUIRED") == "1":
        pytest.fail(reason + " (required under CI)")
    pytest.skip(reason)


def calc_csv(data, tmp_path):
    """The workbook ``data`` as LibreOffice Calc computes and saves it as CSV (UTF-8)."""
    binary = soffice()
    source = tmp_path / "export.xlsx"
    source.write_bytes(data)
    out = tmp_path / "out"
    profile = tmp_path / "profile"  # a profile of its own: parallel runs do not share LibreOffice's lock
    completed = subprocess.run(
        [
            binary,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",  # comma, double quote, UTF-8
            "--outdir",
            str(out),
            str(source),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    result = out / "export.csv"
    assert completed.returncode == 0 and result.exists(), completed.stderr.decode(errors="replace")
    return result.read_text("utf-8")


def test_libreoffice_shows_xlsx_text_as_text_and_never_runs_it(root_client, tmp_path):
    make_customers()
    headers, rows = csv_rows(calc_csv(exported(root_client, XLSX_FORMAT), tmp_path))
    by_email = {row[headers.index("email")]: row for row in rows}
    for number, text in enumerate(TRICKY):
        row = by_email[f"tricky{number}@example.com"]
        for column in ("name", "phone", "notes"):
            assert row[headers.index(column)] == text, (column, text)


def test_the_libreoffice_check_sees_a_formula_run(tmp_path):
    """Control: the same text written as openpyxl types it by default is a formula, and Calc computes it."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["name"])
    sheet.append(["=1+1"])
    assert sheet["A2"].data_type == "f"
    data = io.BytesIO()
    workbook.save(data)
    assert csv_rows(calc_csv(data.getvalue(), tmp_path))[1] == [["2"]]
