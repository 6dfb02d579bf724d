"""Hostile files have a size: problems are capped, echoes are short, uploads belong to their sender.

The memory of a 50 MB import is measured by ``bench/import_memory_bench.py``
(a wall time or a peak is never asserted here); these tests pin the
behaviour that keeps it bounded: the page, the command's output and the
audit record stay small however many problems the file has.
"""

import io
import re

import openpyxl
import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command

from admin_site.models import TransferRecord
from admin_site.transfers.formats import RowStream
from admin_site.transfers.imports import CHUNK_ROWS, read_dataset
from admin_site.transfers.uploads import upload_dir
from console.customers.models import Customer, VipCustomer
from tests.conftest import ALL_DATABASES
from tests.test_imports import HEADER, confirm, page_text, upload
from tests.utils import admin_url, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def invalid_rows(count):
    return HEADER + "".join(f"C{i},not-an-email-{i},DE,lead,gold\n" for i in range(count))


def test_problems_stop_at_the_cap_and_the_page_says_so(root_client, settings):
    settings.CONSOLE_IMPORT_MAX_PROBLEMS = 25
    rows = CHUNK_ROWS * 2 + 10
    response = upload(root_client, "customers", Customer, invalid_rows(rows))
    text = page_text(response)
    assert "Nothing was imported: more than 25 problems to fix" in text
    assert re.search(r"The first 25 are listed, and [\d,]+ more were found; checking stopped at row \d+", text)
    assert text.count("Enter a valid email address") == 25
    assert len(response.content) < 200_000
    assert "Confirm import" not in text
    assert Customer.objects.using("customers").count() == 0
    assert not any(upload_dir().iterdir()), "a refused upload is deleted at once"


def test_a_huge_header_is_refused_without_echoing_it(root_client):
    content = ",".join(f"column_{i:07d}" for i in range(200_000)) + "\n" + ",".join("x" * 200_000) + "\n"
    response = upload(root_client, "customers", Customer, content)
    text = page_text(response)
    assert "The header row has 200,000 columns; an import takes at most 1,000" in text
    assert len(response.content) < 100_000 and "column_0000500" not in text


def test_many_unknown_columns_are_named_a_few_at_a_time(root_client):
    names = [f"{'long_column_name_' * 5}{i}" for i in range(900)]
    content = (
        ",".join(["name", "email", "country", *names]) + "\n" + ",".join(["Ann", "a@example.com", "DE"] + [""] * 900)
    )
    text = page_text(upload(root_client, "customers", Customer, content + "\n"))
    assert "unknown columns:" in text and "and 890 more" in text
    assert names[899] not in text


def test_a_long_cell_is_quoted_as_a_short_excerpt(root_client):
    long = "x" * 100_000
    response = upload(root_client, "customers", Customer, HEADER + f"Ann,{long},DE,lead,gold\n")
    text = page_text(response)
    assert "Enter a valid email address" in text
    assert long[:200] not in text and len(response.content) < 60_000


def test_a_cell_larger_than_the_csv_limit_is_a_file_error_not_a_memory_spike(root_client):
    response = upload(
        root_client, "customers", Customer, HEADER + '"' + "y" * 300_000 + '",a@example.com,DE,lead,gold\n'
    )
    text = page_text(response)
    assert "Line 2 is not valid CSV" in text and "field larger than field limit" in text


def test_a_problem_deep_in_the_file_is_found_with_its_line(root_client):
    good = "".join(f"C{i},c{i}@example.com,DE,lead,gold\n" for i in range(CHUNK_ROWS + 5))
    response = upload(root_client, "customers", Customer, HEADER + good + "Ann,a@example.com,DE\n")
    text = page_text(response)
    assert f"Line {CHUNK_ROWS + 7} has 3 cells" in text
    assert Customer.objects.using("customers").count() == 0


def test_rows_over_many_chunks_are_all_imported_and_a_late_duplicate_is_caught(root_client):
    rows = "".join(f"C{i},c{i}@example.com,DE,lead,gold\n" for i in range(CHUNK_ROWS * 2 + 3))
    preview = upload(root_client, "customers", Customer, HEADER + rows)
    assert f"{CHUNK_ROWS * 2 + 3} new" in page_text(preview)
    assert confirm(root_client, "customers", Customer, preview).status_code == 302
    assert Customer.objects.using("customers").count() == CHUNK_ROWS * 2 + 3
    Customer.objects.using("customers").all().delete()
    late = HEADER + rows + "Again,C1@example.com,DE,lead,gold\n"
    text = page_text(upload(root_client, "customers", Customer, late))
    assert "is also in row 3 of this file" in text


def test_the_preview_keeps_only_its_first_rows(root_client):
    rows = "".join(f"C{i},c{i}@example.com,DE,lead,gold\n" for i in range(1500))
    preview = upload(root_client, "customers", Customer, HEADER + rows)
    assert preview.context["result"].total_rows == 1500
    assert len(preview.context["result"].rows) == 200


def test_the_command_line_refuses_a_file_over_the_limit_unless_told(tmp_path, settings):
    settings.CONSOLE_IMPORT_MAX_BYTES = 100
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "".join(f"C{i},c{i}@example.com,DE,lead,gold\n" for i in range(20)))
    with pytest.raises(CommandError, match=r"the limit is .*--max-bytes"):
        call_command("import_records", "customers.Customer", str(path), "--database", "customers")
    assert Customer.objects.using("customers").count() == 0
    out = io.StringIO()
    call_command(
        "import_records", "customers.Customer", str(path), "--database", "customers", "--max-bytes", "10000", stdout=out
    )
    assert Customer.objects.using("customers").count() == 20


def test_the_command_line_prints_at_most_the_cap(tmp_path, settings):
    settings.CONSOLE_IMPORT_MAX_PROBLEMS = 30
    path = tmp_path / "bad.csv"
    path.write_text(invalid_rows(CHUNK_ROWS + 100))
    errors = io.StringIO()
    with pytest.raises(CommandError, match=r"More than 30 problems \(the first 30 are listed; checking stopped at row"):
        call_command("import_records", "customers.Customer", str(path), "--database", "customers", stderr=errors)
    assert len(errors.getvalue().splitlines()) == 30


def test_another_users_upload_is_no_longer_available_to_them(root_client):
    from django.test import Client

    client = Client()
    preview = upload(root_client, "customers", Customer, HEADER + "Ann,a@example.com,DE,lead,gold\n")
    token = form_data(preview.content)["import_file_name"]
    token = token[0] if isinstance(token, list) else token
    other = User.objects.db_manager("users").create_user("other", password="pw", is_staff=True)
    for codename in ("access_customers", "add_customer", "change_customer"):
        other.user_permissions.add(Permission.objects.using("users").get(codename=codename))
    client.force_login(other)
    response = confirm(client, "customers", Customer, preview)
    assert response.status_code == 302
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("no longer available" in m for m in messages)
    assert Customer.objects.using("customers").count() == 0
    assert (upload_dir() / token).exists(), "the owner can still confirm it"
    assert confirm(root_client, "customers", Customer, preview).status_code == 302
    assert Customer.objects.using("customers").count() == 1


@pytest.mark.parametrize(
    "field, value", [("format", "99"), ("format", "-1"), ("format", "abc"), ("resource", "7"), ("resource", "-5")]
)
def test_a_crafted_confirm_form_is_a_bad_request(root_client, field, value):
    preview = upload(root_client, "customers", Customer, HEADER + "Ann,a@example.com,DE,lead,gold\n")
    data = {k: v for k, v in form_data(preview.content).items() if k != "csrfmiddlewaretoken"}
    data[field] = value
    response = root_client.post(admin_url("customers", Customer, "process_import"), data)
    assert response.status_code == 400
    assert Customer.objects.using("customers").count() == 0


@pytest.mark.parametrize("name", [".", "..", "/etc/passwd", "../x", "0" * 32, ""])
def test_a_crafted_upload_name_is_no_longer_available(root_client, name):
    data = {"import_file_name": name, "original_file_name": "x.csv", "format": "0", "resource": ""}
    response = root_client.post(admin_url("customers", Customer, "process_import"), data)
    assert response.status_code in (302, 400)


def test_an_xlsx_formula_is_refused_naming_its_cell(root_client):
    book = openpyxl.Workbook()
    book.active.append(["name", "email", "country", "status", "tier"])
    book.active.append(["Ann", "a@example.com", "DE", "lead", "gold"])
    book.active["A2"] = '=CONCAT("A","nn")'
    buffer = io.BytesIO()
    book.save(buffer)
    text = page_text(upload(root_client, "customers", Customer, buffer.getvalue(), name="f.xlsx"))
    assert "Row 2, cell A2 holds a formula" in text
    assert Customer.objects.using("customers").count() == 0


def test_columns_that_are_not_imported_are_named_in_the_preview(root_client):
    content = "name,email,country,created_at\nAnn,a@example.com,DE,2020-01-01 00:00:00\n"
    text = page_text(upload(root_client, "customers", Customer, content))
    assert "Not imported, set by the console: created_at." in text


def test_the_field_list_is_still_shown_after_a_file_error(root_client):
    response = upload(root_client, "customers", Customer, b"\xff\xfe" + HEADER.encode("utf-16-le"))
    assert "UTF-16" in page_text(response)
    fields = response.context["fields_list"]
    assert fields and "email" in fields[0][1]


def test_a_refused_proxy_import_records_no_rows_as_written(root_client):
    content = HEADER + "Ann,a@example.com,DE,lead,gold\nBob,not-an-email,DE,lead,gold\n"
    call_args = ("import_records", "customers.VipCustomer")
    path = upload_dir() / "vip.csv"
    path.write_text(content)
    with pytest.raises(CommandError):
        call_command(*call_args, str(path), "--database", "customers", stderr=io.StringIO())
    record = TransferRecord.objects.using("users").get()
    assert record.outcome == "rejected" and record.rows_new == 0 and record.rows_invalid == 1
    assert VipCustomer.objects.using("customers").count() == 0


def test_read_dataset_streams_every_format():
    stream = read_dataset(b"name,email\nAnn,a@example.com\n", "csv")
    assert isinstance(stream, RowStream) and stream.headers == ["name", "email"]
    assert [list(chunk) for chunk in stream.chunks(10)] == [[("Ann", "a@example.com")]]
    assert [list(chunk) for chunk in stream.chunks(10)] == [[("Ann", "a@example.com")]], "read again from the start"
    json_stream = read_dataset(b'[{"name": "Ann"},\n {"name": "Bob"}]', "json")
    assert [chunk.source_rows for chunk in json_stream.chunks(1)] == [[1], [2]]


def test_one_far_cell_in_a_tiny_xlsx_is_refused_at_once(root_client, settings):
    """A 5 KB workbook with a cell at XFD1048576 declares a billion cells; it held a server thread for 5 minutes."""
    book = openpyxl.Workbook()
    book.active.append(["name", "email", "country", "status", "tier"])
    book.active.append(["Ann", "a@example.com", "DE", "lead", "gold"])
    book.active["XFD1048576"] = "far"
    buffer = io.BytesIO()
    book.save(buffer)
    assert len(buffer.getvalue()) < 10_000
    text = page_text(upload(root_client, "customers", Customer, buffer.getvalue(), name="far.xlsx"))
    assert "Row 1048576 has 16,384 cells but the header row has 5" in text
    assert Customer.objects.using("customers").count() == 0


def test_an_xlsx_whose_rows_are_mostly_gaps_stops_at_the_cell_cap(root_client, monkeypatch):
    from admin_site.transfers import formats

    monkeypatch.setattr(formats, "XLSX_MAX_CELLS", 5_000)
    book = openpyxl.Workbook()
    book.active.append(["name", "email", "country", "status", "tier"])
    for row in range(2, 3000):
        book.active.cell(row=row, column=5, value="gold")
    buffer = io.BytesIO()
    book.save(buffer)
    text = page_text(upload(root_client, "customers", Customer, buffer.getvalue(), name="gaps.xlsx"))
    assert "The sheet holds more than 5,000 cells" in text
