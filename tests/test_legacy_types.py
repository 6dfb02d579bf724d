"""MySQL column types and values on the legacy panel: zero dates, ENUM, SET, unsigned BIGINT, latin1, odd names.

``ITEMMAST`` holds them (``console/legacy/sql``).  What only MySQL/MariaDB can
hold (a zero date, 2^64-1, a latin1 table) is tested there and skipped on
SQLite; everything else runs on both.  Stored values are read back with a
plain cursor, not through the model: the model is what is under test.
"""

import csv
import io
import re

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections

from admin_site.transfers.formats import IMPORT_FORMATS
from console.legacy import demo
from console.legacy.models import Itemmast
from tests.utils import admin_url, capture_queries, export_file, form_data

pytestmark = pytest.mark.django_db(databases=["users", "legacy"])

MYSQL = connections["legacy"].vendor == "mysql"
mysql_only = pytest.mark.skipif(not MYSQL, reason="zero dates, 2^64-1 and latin1 tables exist only on MySQL/MariaDB")

FORMAT = {cls.__name__.lower(): str(i) for i, cls in enumerate(IMPORT_FORMATS)}
COLUMNS = ["DESCR", "STATUS", "FEATURES", "TAXABLE", "SERIAL", "UNIT PRICE", "ORDER", "CREATED", "LASTSOLD"]
LARGEST = 2**64 - 1


def raw_row(itemno, columns=COLUMNS):
    """The stored values of an item, as the driver returns them (a zero date is a string on MySQL)."""
    connection = connections["legacy"]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote('ITEMMAST')} WHERE {quote('ITEMNO')} = %s",
            [itemno],
        )
        return cursor.fetchone()


def all_rows():
    connection = connections["legacy"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name('ITEMMAST')} ORDER BY 1")
        return cursor.fetchall()


def page_text(response):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def load_items():
    """The demo's items (``demo.load`` writes them only into an empty legacy database)."""
    connection = connections["legacy"]
    with demo.zero_dates_allowed(connection):
        Itemmast.objects.using("legacy").bulk_create(demo._items(connection))


@pytest.fixture
def items():
    """The demo's items, by description word: zero dates, Latin-1 text and the largest serial among them."""
    load_items()
    rows = {item.descr.split()[0]: item for item in Itemmast.objects.using("legacy")}
    assert set(rows) == {"Crème", "Größe", "Façade-Ölfarbe", "Smørrebrød-Teller"}
    return rows


@pytest.fixture
def panel(root_client):
    return root_client


def change_url(item):
    return admin_url("legacy", Itemmast, "change", item.pk)


def opened_form(client, item):
    """What a browser posts back from the item's change form, untouched."""
    response = client.get(change_url(item))
    assert response.status_code == 200
    data = form_data(response.content, "itemmast_form")
    data.pop("csrfmiddlewaretoken", None)
    return data


def save(client, item, **changes):
    data = {**opened_form(client, item), **changes}
    return client.post(change_url(item), data)


def largest_serial():
    return connections["legacy"].ops.integer_field_range("PositiveBigIntegerField")[1]


# -- reading -----------------------------------------------------------------------------------------


@mysql_only
def test_zero_dates_are_stored_as_zero_and_read_as_empty(items):
    creme = items["Crème"]
    assert raw_row(creme.pk, ["CREATED", "LASTSOLD"]) == ("0000-00-00", "0000-00-00 00:00:00")
    assert (creme.created, creme.lastsold) == (None, None)


def test_list_and_change_form_show_every_type(panel, items):
    response = panel.get(admin_url("legacy", Itemmast, "changelist"))
    assert response.status_code == 200
    text = page_text(response)
    assert "Crème brûlée Schälchen" in text and "new,fragile" in text
    assert str(largest_serial()) in text

    page = panel.get(change_url(items["Crème"]))
    assert page.status_code == 200
    form = page.context["adminform"].form
    # The ENUM is a select of its members, the SET a checkbox per member; zero dates are empty.
    assert [value for value, _ in form.fields["status"].choices if value] == ["active", "discontinued", "blocked"]
    assert re.findall(r'type="checkbox" name="features" value="(\w+)"', page.content.decode()) == [
        "new",
        "sale",
        "fragile",
        "bulky",
    ]
    data = form_data(page.content, "itemmast_form")
    assert data["features"] == ["new", "fragile"]
    assert data["created"] == [""] and data["lastsold_0"] == [""]
    assert data["serial"] == [str(largest_serial())]
    assert data["descr"] == ["Crème brûlée Schälchen"]


@mysql_only
def test_the_table_is_latin1_and_its_text_reads_back_as_written(items):
    with connections["legacy"].cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'ITEMMAST'"
        )
        assert cursor.fetchone()[0].startswith("latin1_")
    assert raw_row(items["Smørrebrød-Teller"].pk, ["DESCR"]) == ("Smørrebrød-Teller ½ Dutzend",)


# -- saving ------------------------------------------------------------------------------------------


def test_a_save_writes_only_the_changed_column(panel, items):
    item = items["Crème"]
    before = raw_row(item.pk)
    with capture_queries(["legacy"]) as log:
        response = save(panel, item, order="11")
    assert response.status_code == 302, page_text(response)[-800:]
    updates = [sql for sql in log.writes_on("legacy") if sql.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1
    assert "ORDER" in updates[0] and "CREATED" not in updates[0] and "DESCR" not in updates[0]
    after = raw_row(item.pk)
    assert after[COLUMNS.index("ORDER")] == 11
    assert [v for c, v in zip(COLUMNS, after, strict=True) if c != "ORDER"] == [
        v for c, v in zip(COLUMNS, before, strict=True) if c != "ORDER"
    ]


@mysql_only
def test_zero_dates_sent_back_unchanged_are_stored_unchanged(panel, items):
    item = items["Façade-Ölfarbe"]
    assert save(panel, item, descr="Façade-Ölfarbe weiß, matt", taxable="").status_code == 302
    assert raw_row(item.pk, ["CREATED", "DESCR", "TAXABLE"]) == ("0000-00-00", "Façade-Ölfarbe weiß, matt", 0)


def test_clearing_a_date_stores_no_date(panel, items):
    item = items["Größe"]
    assert raw_row(item.pk, ["CREATED"])[0] is not None
    assert save(panel, item, created="").status_code == 302
    # MySQL's "no date" is the zero date (the column is NOT NULL); SQLite has NULL.
    assert raw_row(item.pk, ["CREATED"]) == ("0000-00-00" if MYSQL else None,)
    assert Itemmast.objects.using("legacy").get(pk=item.pk).created is None


def test_adding_an_item_through_the_form(panel, items):
    add = admin_url("legacy", Itemmast, "add")
    data = form_data(panel.get(add).content, "itemmast_form")
    data.pop("csrfmiddlewaretoken", None)
    data.update(descr="Spätzle-Presse", status="blocked", features=["bulky", "new"], serial=str(largest_serial()))
    response = panel.post(add, data)
    assert response.status_code == 302, page_text(response)[-800:]
    item = Itemmast.objects.using("legacy").get(descr="Spätzle-Presse")
    expected_zero = ("0000-00-00", "0000-00-00 00:00:00") if MYSQL else (None, None)
    assert raw_row(item.pk, ["STATUS", "FEATURES", "SERIAL", "CREATED", "LASTSOLD"]) == (
        "blocked",
        "new,bulky",  # MySQL's order, the members' declared order
        largest_serial(),
        *expected_zero,
    )


def test_ticking_set_members_stores_them_in_declared_order(panel, items):
    item = items["Größe"]
    assert save(panel, item, features=["bulky", "sale"]).status_code == 302
    assert raw_row(item.pk, ["FEATURES"]) == ("sale,bulky",)
    assert save(panel, item, features=[]).status_code == 302
    assert raw_row(item.pk, ["FEATURES"]) == ("",)


# -- bad input: field errors, nothing written ---------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"status": "gone"}, "status", "Select a valid choice. gone is not one of the available choices."),
        ({"features": ["new", "secret"]}, "features", "Select a valid choice. secret is not one of the available"),
        ({"serial": "-1"}, "serial", "Ensure this value is greater than or equal to 0."),
        ({"serial": "out of range"}, "serial", "Ensure this value is between 0 and"),
        ({"descr": "Teller ✓ 日本"}, "descr", "“✓” cannot be stored in this column"),
    ],
)
def test_invalid_values_are_field_errors_and_write_nothing(panel, items, changes, field, message):
    if changes.get("serial") == "out of range":
        changes = {"serial": str(largest_serial() + 1)}
    item = items["Crème"]
    before = all_rows()
    response = save(panel, item, **changes)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and any(message in error for error in errors[field]), errors
    assert message.split(".")[0] in page_text(response)
    assert all_rows() == before


@mysql_only
def test_a_serial_above_2_64_is_a_field_error(panel, items):
    before = all_rows()
    response = save(panel, items["Größe"], serial=str(2**64))
    assert response.status_code == 200
    assert "Ensure this value is between 0 and 18446744073709551615" in page_text(response)
    assert all_rows() == before


@mysql_only
def test_the_largest_serial_survives_a_save_of_another_field_and_can_be_written(panel, items):
    item = items["Crème"]
    assert save(panel, item, unit_price="4.75").status_code == 302
    assert raw_row(item.pk, ["SERIAL", "UNIT PRICE"])[0] == LARGEST
    other = items["Größe"]
    assert save(panel, other, serial=str(LARGEST)).status_code == 302
    assert raw_row(other.pk, ["SERIAL"]) == (LARGEST,)


# -- export and import ---------------------------------------------------------------------------------


def exported(panel, fmt):
    response = export_file(panel, "legacy", Itemmast, FORMAT[fmt])
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.content


def upload(panel, content, name="items.csv"):
    content = content.encode() if isinstance(content, str) else content
    return panel.post(
        admin_url("legacy", Itemmast, "import"),
        {"format": FORMAT[name.rsplit(".", 1)[-1]], "import_file": SimpleUploadedFile(name, content)},
    )


def confirm(panel, preview):
    fields = form_data(preview.content)
    data = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert "import_file_name" in data, page_text(preview)[-800:]
    return panel.post(admin_url("legacy", Itemmast, "process_import"), data)


def test_csv_export_holds_every_value(panel, items):
    rows = {row["descr"]: row for row in csv.DictReader(io.StringIO(exported(panel, "csv").decode("utf-8-sig")))}
    creme = rows["Crème brûlée Schälchen"]
    assert creme["status"] == "active" and creme["features"] == "new,fragile"
    assert creme["serial"] == str(largest_serial())
    assert creme["created"] == "" and creme["lastsold"] == ""  # no date
    assert rows["Größe XL Müllbeutel"]["created"] == "2001-05-02"


def test_xlsx_export_holds_every_value(panel, items):
    sheet = openpyxl.load_workbook(io.BytesIO(exported(panel, "xlsx"))).active
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    rows = {row[header.index("descr")]: dict(zip(header, row, strict=True)) for row in rows}
    creme = rows["Crème brûlée Schälchen"]
    # A spreadsheet number holds 15 digits: 2^64-1 must not come back rounded.
    assert str(creme["serial"]) == str(largest_serial())
    assert creme["created"] in (None, "") and creme["features"] == "new,fragile"


@pytest.mark.django_db(databases=["users", "legacy"], transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_of_committed_rows_reads_zero_dates_too(panel, fmt):
    """Outside a transaction MySQL exports stream through a cursor of their own, rendering some values raw."""
    load_items()
    try:
        content = exported(panel, fmt)
    finally:
        Itemmast.objects.using("legacy").all().delete()  # committed, and a flush leaves unmanaged tables alone
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    else:
        header, *cells = list(openpyxl.load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
        rows = [dict(zip(header, row, strict=True)) for row in cells]
    by_descr = {row["descr"]: row for row in rows}
    assert by_descr["Crème brûlée Schälchen"]["lastsold"] in ("", None)
    assert by_descr["Größe XL Müllbeutel"]["lastsold"] not in ("", None)
    assert str(by_descr["Crème brûlée Schälchen"]["serial"]) == str(largest_serial())


def test_exported_file_imports_back_and_changes_only_what_was_edited(panel, items):
    before = {row[0]: row for row in all_rows()}
    text = exported(panel, "csv").decode("utf-8-sig")
    lines = list(csv.DictReader(io.StringIO(text)))
    for line in lines:
        if line["descr"].startswith("Crème"):
            line["order"] = "99"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(lines[0]))
    writer.writeheader()
    writer.writerows(lines)
    preview = upload(panel, out.getvalue())
    # Only the edited row is an update; the others, zero dates and 2^64-1 included, compare unchanged.
    text = page_text(preview)
    assert "0 new" in text and "1 updated" in text and "3 unchanged" in text, text[-800:]
    assert confirm(panel, preview).status_code == 302
    after = {row[0]: row for row in all_rows()}
    creme = items["Crème"].pk
    order = 1 + COLUMNS.index("ORDER")
    assert after[creme][order] == 99
    for pk, row in before.items():
        expected = list(row)
        if pk == creme:
            expected[order] = 99
        assert list(after[pk]) == expected  # zero dates, latin1 text and 2^64-1 included


def test_import_creates_a_new_item(panel, items):
    content = "descr,status,features,taxable,serial,unit_price,order,created\nKäsereibe,discontinued,sale,0,5,3.10,7,\n"
    preview = upload(panel, content)
    assert confirm(panel, preview).status_code == 302
    item = Itemmast.objects.using("legacy").get(descr="Käsereibe")
    assert raw_row(item.pk, ["STATUS", "FEATURES", "SERIAL", "ORDER", "CREATED"]) == (
        "discontinued",
        "sale",
        5,
        7,
        "0000-00-00" if MYSQL else None,
    )


@pytest.mark.parametrize(
    "cell, column, value",
    [("status", "status", "gone"), ("features", "features", "new,secret"), ("descr", "descr", "Teller ✓")],
)
def test_an_invalid_cell_is_a_row_error_naming_row_and_column_and_nothing_is_written(panel, items, cell, column, value):
    before = all_rows()
    bad = {"descr": "Reibe", "status": "active", "features": "", "serial": "1", cell: value}
    content = "descr,status,features,serial\nHobel,active,,1\n" + ",".join(f'"{v}"' for v in bad.values()) + "\n"
    response = upload(panel, content)
    text = page_text(response)
    assert response.status_code == 200
    assert f"3 {column} {value}" in text, text[-1000:]
    assert "Confirm import" not in text
    assert all_rows() == before


@pytest.mark.parametrize("value", ["yes", "maybe", "2"])
def test_a_flag_cell_that_is_not_yes_or_no_is_a_row_error_not_a_cleared_flag(panel, items, value):
    """Stock import-export reads any text but 1/true as False: a taxable item became untaxed without a word."""
    before = all_rows()
    first, second = sorted(row[0] for row in before)[:2]
    response = upload(panel, f"itemno,taxable\n{first},true\n{second},{value}\n")
    text = page_text(response)
    assert response.status_code == 200
    assert f"3 taxable {value} “{value}” is not a yes/no value" in text, text[-1000:]
    assert "Confirm import" not in text
    assert all_rows() == before


def test_searching_or_filtering_for_a_character_latin1_lacks_is_no_500(panel, items):
    """MySQL refuses to compare latin1 text with such a character ("Illegal mix of collations")."""
    changelist = admin_url("legacy", Itemmast, "changelist")
    response = panel.get(changelist, {"q": "Crème 😀"})
    assert response.status_code == 200 and list(response.context["cl"].result_list) == []
    assert panel.get(changelist, {"q": "Crème"}).context["cl"].result_list[0] == items["Crème"]
    assert panel.get(changelist, {"status__exact": "ü😀"}).status_code == 400
    assert panel.get(changelist, {"descr__istartswith": "größe"}).context["cl"].result_list[0] == items["Größe"]
