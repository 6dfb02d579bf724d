"""Streaming exports (``admin_site.transfers.exports``) and the ``export_records`` command.

The exports must hold the rows of the panel's database only, as the queryset
gives them, rendered as django-import-export renders them (so they import
back), guarded against spreadsheet formulas, streamed with flat memory and,
on MySQL/MariaDB, through a connection of their own that is always released.
"""

import csv
import datetime
import gc
import io
import json
import tempfile
import tracemalloc
import zoneinfo
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import tablib
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.models import Count, IntegerField, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from import_export import fields as ie_fields
from import_export import widgets
from import_export.formats.base_formats import CSV as StockCSV
from import_export.formats.base_formats import JSON as StockJSON
from import_export.formats.base_formats import XLSX as StockXLSX

from admin_site.adapters.openpyxl import temporary_sheet_files
from admin_site.models import TransferRecord
from admin_site.transfers.exports import escape_formula, stream_export
from admin_site.transfers.exports import rows as export_rows
from admin_site.transfers.resources import DatabaseModelResource, resource_for
from console.customers.models import Address, BusinessCustomer, Customer, Order, Tag, VipCustomer
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import export_file

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)
#: Tests whose export must run outside a test transaction: a separate connection sees only committed rows.
committed = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


def on_mysql(alias="archive"):
    return connections[alias].vendor == "mysql"


def export(model, alias, file_format="csv", queryset=None, fields=None, resource=None):
    """The whole export as bytes, and the Export object."""
    resource = resource or resource_for(model)(using=alias)
    queryset = model._default_manager.using(alias).all() if queryset is None else queryset
    result = stream_export(resource, queryset, file_format, selected_fields=fields)
    return b"".join(result.chunks), result


def read(data, file_format):
    """Header and rows of an export, whatever its format (XLSX cells as openpyxl reads them)."""
    if file_format in ("csv", "tsv"):
        rows = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter="," if file_format == "csv" else "\t"))
        return rows[0], rows[1:]
    if file_format == "json":
        objects = json.loads(data)
        return (list(objects[0]) if objects else []), [list(o.values()) for o in objects]
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    return rows[0], rows[1:]


def column(data, file_format, name):
    headers, rows = read(data, file_format)
    return [row[headers.index(name)] for row in rows]


def stock(model, alias, file_format, queryset=None):
    """What stock django-import-export writes for the same rows (XLSX: typed, as its admin asks)."""
    resource = resource_for(model)(using=alias)
    queryset = queryset if queryset is not None else model._default_manager.using(alias).all()
    dataset = resource.export(queryset, force_native_type=file_format == "xlsx")
    return {"csv": StockCSV, "json": StockJSON, "xlsx": StockXLSX}[file_format]().export_data(dataset)


def cells(data):
    """XLSX rows as values, empty cells and empty strings alike."""
    headers, rows = read(data, "xlsx")
    return headers, [[None if value == "" else value for value in row] for row in rows]


@pytest.fixture
def both():
    """Different customers in ``customers`` and ``archive``: an export of one must not show the other."""
    return {"customers": seed_customers("customers", "-live"), "archive": seed_customers("archive", "-old")}


def make(alias, name, **fields):
    number = Customer.objects.using(alias).count()
    customer = Customer(name=name, email=f"made{number}@example.com", **{"country": "DE", **fields})
    customer.save(using=alias)
    return customer


# What is exported ------------------------------------------------------------------


def test_escape_formula_guards_only_text_that_starts_a_formula():
    for value in ("=1+1", "+x", "-x", "@x", "\tx", "\rx"):
        assert escape_formula(value) == "'" + value
    for value in ("x=1", "", "plain", 5, Decimal("-5.00"), None, datetime.date(2026, 1, 1)):
        assert escape_formula(value) == value


@pytest.mark.parametrize("file_format", ["csv", "tsv", "json", "xlsx"])
def test_exports_hold_the_rows_of_their_database_only(both, file_format):
    data, result = export(Customer, "archive", file_format)
    names = column(data, file_format, "name")
    assert sorted(names) == ["Ann Archer-old", "Bob Baker-old", "Carla Cole-old"]
    assert result.rows == 3
    assert result.extension == file_format
    data, _ = export(Customer, "customers", file_format)
    assert all(name.endswith("-live") for name in column(data, file_format, "name"))


def test_csv_and_json_match_stock_import_export_cell_for_cell(both):
    ann = both["archive"]["ann"]
    Customer.objects.using("archive").filter(pk=ann.pk).update(
        lifetime_value=Decimal("1234.50"), last_contacted_at=datetime.datetime(2026, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    )
    ours, _ = export(Customer, "archive", "csv")
    assert ours.decode() == stock(Customer, "archive", "csv")
    ours, _ = export(Customer, "archive", "json")
    assert json.loads(ours) == json.loads(stock(Customer, "archive", "json"))
    ours, _ = export(Customer, "archive", "xlsx")
    assert cells(ours) == cells(stock(Customer, "archive", "xlsx"))
    # Foreign keys (the id), dates and the multi-table child too.
    for model in (Address, Order, BusinessCustomer):
        ours, _ = export(model, "archive", "csv")
        assert ours.decode() == stock(model, "archive", "csv"), model
        ours, _ = export(model, "archive", "xlsx")
        assert cells(ours) == cells(stock(model, "archive", "xlsx")), model


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_datetimes_are_in_the_current_time_zone_as_stock_writes_them(both, zone):
    Customer.objects.using("archive").update(
        last_contacted_at=datetime.datetime(2026, 7, 1, 2, 30, 15, 123456, tzinfo=datetime.UTC)
    )
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        text, _ = export(Customer, "archive", "csv")
        assert text.decode() == stock(Customer, "archive", "csv")
        sheet, _ = export(Customer, "archive", "xlsx")
        assert cells(sheet) == cells(stock(Customer, "archive", "xlsx"))
    local = "2026-06-30 22:30:15" if zone == "America/New_York" else "2026-07-01 08:00:15"
    assert set(column(text, "csv", "last_contacted_at")) == {local}
    assert {value.replace(microsecond=0) for value in column(sheet, "xlsx", "last_contacted_at")} == {
        datetime.datetime.fromisoformat(local)
    }


def test_headers_follow_the_resource_and_the_selected_fields(both):
    data, _ = export(Customer, "archive", "csv")
    assert read(data, "csv")[0] == resource_for(Customer)(using="archive").get_export_headers()
    # Selected fields limit the columns; the resource's export order stays, as in the admin's form.
    data, _ = export(Customer, "archive", "csv", fields=["email", "id"])
    headers, rows = read(data, "csv")
    assert headers == ["id", "email"]
    assert {row[1] for row in rows} == {"ann-old@example.com", "bob-old@example.com", "carla-old@acme.example"}


def test_ordering_and_filters_of_the_queryset_are_kept(both):
    make("archive", "Zed", country="FR")
    queryset = Customer.objects.using("archive").filter(country__in=["DE", "FR"]).order_by("-name")
    data, _ = export(Customer, "archive", "csv", queryset=queryset)
    assert column(data, "csv", "name") == ["Zed", "Bob Baker-old", "Ann Archer-old"]
    # A changelist-style queryset: annotations, distinct, a search across a relation.
    queryset = (
        Customer.objects.using("archive")
        .filter(tags__name__startswith="vip")
        .annotate(n_orders=Count("orders"))
        .distinct()
        .order_by("name")
    )
    data, _ = export(Customer, "archive", "csv", queryset=queryset)
    assert column(data, "csv", "name") == ["Ann Archer-old"]


def test_a_proxy_exports_what_its_manager_shows(both):
    make("archive", "Vera", tier="vip")
    data, _ = export(VipCustomer, "archive", "csv")
    assert sorted(column(data, "csv", "name")) == ["Bob Baker-old", "Vera"]


def test_many_to_many_columns_list_related_ids_in_related_order(both):
    vip, loyal = both["archive"]["tags"]
    ann = both["archive"]["ann"]
    ann.tags.set([loyal, vip])  # Tag ordering is by name: loyal-old, vip-old
    data, _ = export(Customer, "archive", "csv")
    tags = dict(zip(column(data, "csv", "name"), column(data, "csv", "tags"), strict=True))
    assert tags == {"Ann Archer-old": f"{loyal.pk},{vip.pk}", "Bob Baker-old": "", "Carla Cole-old": ""}


@pytest.mark.parametrize("file_format", ["csv", "json", "xlsx"])
def test_each_many_to_many_column_lists_its_own_relation(file_format):
    """A user's groups and permissions are two relations: neither column may show the other's ids."""
    desk = Group(name="Front desk")
    desk.save(using="users")
    permission = Permission.objects.using("users").get(codename="change_team")
    assert permission.pk != desk.pk
    dora = User.objects.db_manager("users").create_user("dora", password="pw")
    dora.groups.set([desk])
    dora.user_permissions.set([permission])
    data, _ = export(User, "users", file_format)
    headers, rows = read(data, file_format)
    [row] = rows
    assert str(row[headers.index("groups")]) == str(desk.pk)
    assert str(row[headers.index("user_permissions")]) == str(permission.pk)


class AnnotatedResource(DatabaseModelResource):
    """Fields that need an instance: a dehydrate method, a property of a related row, an annotation."""

    shout = ie_fields.Field(column_name="shout")
    customer_name = ie_fields.Field(attribute="customer__name", column_name="customer_name")
    line_count = ie_fields.Field(attribute="line_count", column_name="line_count")

    class Meta:
        model = Order
        fields = ["id", "number", "customer", "placed_on", "customer_name", "shout", "line_count"]

    def dehydrate_shout(self, order):
        return order.number.upper() + "!"


def test_dehydrate_methods_relations_and_annotations_cost_queries_per_chunk_not_per_row(both):
    ann = both["archive"]["ann"]
    for n in range(2, 30):
        Order(customer=ann, number=f"=A-{n}", placed_on=datetime.date(2026, 3, n % 28 + 1)).save(using="archive")
    queryset = Order.objects.using("archive").annotate(line_count=Count("lines")).order_by("id")
    resource = AnnotatedResource(using="archive")
    with CaptureQueriesContext(connections["archive"]) as queries:
        data, result = export(Order, "archive", "csv", queryset=queryset, resource=resource)
    assert result.rows == 29
    assert len(queries.captured_queries) <= 3  # rows (unless streamed elsewhere) + one instance query per chunk
    headers, rows = read(data, "csv")
    assert headers == ["id", "number", "customer", "placed_on", "customer_name", "shout", "line_count"]
    first, second = rows[0], rows[1]
    assert first[1:] == ["A-1-old", str(ann.pk), "2026-03-01", "Ann Archer-old", "A-1-OLD!", "1"]
    assert second[1] == "'=A-2" and second[5] == "'=A-2!"  # text from a string is guarded, even from dehydrate


class LabelledResource(DatabaseModelResource):
    """Two annotations: text that looks like a formula, and a negative number."""

    label = ie_fields.Field(attribute="label", column_name="label")
    balance = ie_fields.Field(attribute="balance", column_name="balance")

    class Meta:
        model = Customer
        fields = ["name", "label", "balance"]


def test_annotations_come_from_the_rows_and_only_their_text_is_guarded(both):
    queryset = (
        Customer.objects.using("archive")
        .annotate(label=Concat(Value("="), "name"), balance=Value(-5, output_field=IntegerField()))
        .order_by("name")
    )
    with CaptureQueriesContext(connections["archive"]) as queries:
        data, _ = export(Customer, "archive", "csv", queryset=queryset, resource=LabelledResource(using="archive"))
    assert len(queries.captured_queries) <= 1  # no instance fetched for an annotation
    assert read(data, "csv")[1][0] == ["Ann Archer-old", "'=Ann Archer-old", "-5"]


def test_a_sliced_queryset_with_prefetches_exports_its_rows_with_their_instances(both):
    """An admin's queryset may prefetch relations and a caller may slice it; instance columns still come."""
    ann = both["archive"]["ann"]
    for n in range(2, 6):
        Order(customer=ann, number=f"B-{n}", placed_on=datetime.date(2026, 3, n)).save(using="archive")
    queryset = (
        Order.objects.using("archive").annotate(line_count=Count("lines")).prefetch_related("lines").order_by("-id")
    )
    data, result = export(Order, "archive", "csv", queryset=queryset[:3], resource=AnnotatedResource(using="archive"))
    assert result.rows == 3
    assert column(data, "csv", "shout") == ["B-5!", "B-4!", "B-3!"]


def test_a_values_queryset_is_refused():
    with pytest.raises(TypeError, match="model QuerySet"):
        stream_export(resource_for(Customer)(using="archive"), Customer.objects.using("archive").values(), "csv")


class TagNamesResource(DatabaseModelResource):
    """Related rows by name: through a FK object (ForeignKeyWidget field) and a many-to-many."""

    tags = ie_fields.Field(attribute="tags", column_name="tags", widget=widgets.ManyToManyWidget(Tag, field="name"))

    class Meta:
        model = Customer
        fields = ["id", "name", "tags"]


class OrderCustomerResource(DatabaseModelResource):
    customer = ie_fields.Field(
        attribute="customer", column_name="customer", widget=widgets.ForeignKeyWidget(Customer, field="name")
    )

    class Meta:
        model = Order
        fields = ["number", "customer"]


class UpperRowsResource(DatabaseModelResource):
    """Renders whole rows itself."""

    class Meta:
        model = Tag
        fields = ["id", "name"]

    def export_resource(self, instance, selected_fields=None, **kwargs):
        return [instance.pk, "=" + instance.name.upper()]


def test_related_names_custom_rows_and_their_guard(both):
    vip, loyal = both["archive"]["tags"]
    evil = Tag(name="=evil")
    evil.save(using="archive")
    both["archive"]["bob"].tags.set([evil])
    both["archive"]["ann"].tags.set([vip, loyal])
    data, _ = export(Customer, "archive", "csv", resource=TagNamesResource(using="archive"))
    tags = dict(zip(column(data, "csv", "name"), column(data, "csv", "tags"), strict=True))
    assert tags == {"Ann Archer-old": "loyal-old,vip-old", "Bob Baker-old": "'=evil", "Carla Cole-old": ""}
    data, _ = export(Customer, "archive", "json", resource=TagNamesResource(using="archive"))
    assert {o["name"]: o["tags"] for o in json.loads(data)}["Bob Baker-old"] == "=evil"  # JSON is not guarded
    for file_format in ("csv", "xlsx"):
        data, _ = export(Order, "archive", file_format, resource=OrderCustomerResource(using="archive"))
        assert column(data, file_format, "customer") == ["Ann Archer-old"]
    data, _ = export(Tag, "archive", "csv", resource=UpperRowsResource(using="archive"))
    assert sorted(column(data, "csv", "name")) == ["'==EVIL", "'=LOYAL-OLD", "'=VIP-OLD"]
    data, _ = export(Tag, "archive", "xlsx", resource=UpperRowsResource(using="archive"))
    assert sorted(column(data, "xlsx", "id")) == sorted(Tag.objects.using("archive").values_list("pk", flat=True))
    assert sorted(column(data, "xlsx", "name")) == ["==EVIL", "=LOYAL-OLD", "=VIP-OLD"]  # typed text, no guard


def test_xlsx_replaces_characters_a_workbook_cannot_hold(both):
    make("archive", "Bell", notes="ding\x07dong")
    data, _ = export(Customer, "archive", "xlsx")
    assert "ding\N{REPLACEMENT CHARACTER}dong" in column(data, "xlsx", "notes")


def test_xlsx_from_the_admin_keeps_carriage_returns(root_client):
    """XML parsers read a literal CR as LF: the sheet must carry it as a character reference."""
    make("archive", "Cary", notes="\rhello")
    make("archive", "Lina", notes="one\r\ntwo\rthree")
    response = export_file(root_client, "archive", Customer, file_format="1")  # XLSX
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.openxmlformats")
    data = b"".join(response.streaming_content)
    notes = dict(zip(column(data, "xlsx", "name"), column(data, "xlsx", "notes"), strict=True))
    assert notes == {"Cary": "\rhello", "Lina": "one\r\ntwo\rthree"}
    assert not list(Path(tempfile.gettempdir()).glob("openpyxl*.cr"))


def test_formulas_are_guarded_in_csv_and_tsv_numbers_and_dates_are_not(both):
    for name in ("=1+1", "+x", "-x", "@x", "\tx", "\rx"):
        make("archive", name, notes=name, lifetime_value=Decimal("-5.00"))
    for file_format in ("csv", "tsv"):
        data, _ = export(Customer, "archive", file_format)
        headers, rows = read(data, file_format)
        by_name = {row[headers.index("notes")]: row for row in rows if row[headers.index("notes")]}
        assert set(by_name) == {"'=1+1", "'+x", "'-x", "'@x", "'\tx", "'\rx"}
        for row in by_name.values():
            assert row[headers.index("name")] == row[headers.index("notes")]
            assert row[headers.index("lifetime_value")] == "-5.00"
            datetime.datetime.strptime(row[headers.index("created_at")], "%Y-%m-%d %H:%M:%S")


def test_xlsx_cells_are_typed_and_text_is_text_without_a_guard(both):
    make("archive", "=HYPERLINK(1)", lifetime_value=Decimal("-5.00"))
    data, result = export(Customer, "archive", "xlsx")
    assert result.content_type.startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    headers = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    rows = list(sheet.iter_rows(min_row=2))
    row = next(r for r in rows if r[headers.index("name")].value == "=HYPERLINK(1)")
    assert row[headers.index("name")].data_type == "s"
    assert row[headers.index("lifetime_value")].value == -5
    assert row[headers.index("lifetime_value")].data_type == "n"
    assert row[headers.index("id")].value == Customer.objects.using("archive").get(name="=HYPERLINK(1)").pk
    assert row[headers.index("created_at")].is_date
    assert isinstance(row[headers.index("created_at")].value, datetime.datetime)
    data, _ = export(Order, "archive", "xlsx")
    placed_on = column(data, "xlsx", "placed_on")
    assert placed_on == [datetime.datetime(2026, 3, 1)]  # a date cell (openpyxl reads dates as datetimes)


def test_json_is_valid_with_no_rows_and_with_rows(both):
    data, result = export(Customer, "archive", "json", queryset=Customer.objects.using("archive").none())
    assert json.loads(data) == [] and result.rows == 0
    data, _ = export(Customer, "archive", "json", queryset=Customer.objects.using("archive").filter(name="nobody"))
    assert json.loads(data) == []
    data, result = export(Customer, "archive", "json")
    objects = json.loads(data)
    assert len(objects) == result.rows == 3
    assert list(objects[0]) == resource_for(Customer)(using="archive").get_export_headers()


def test_empty_csv_and_xlsx_still_have_their_header(both):
    none = Customer.objects.using("archive").none()
    data, _ = export(Customer, "archive", "csv", queryset=none)
    assert read(data, "csv") == (resource_for(Customer)(using="archive").get_export_headers(), [])
    data, _ = export(Customer, "archive", "xlsx", queryset=none)
    assert read(data, "xlsx")[1] == []


def test_csv_export_imports_back_without_changes(both):
    data, _ = export(Customer, "archive", "csv")
    dataset = tablib.Dataset().load(data.decode("utf-8"), format="csv")
    result = resource_for(Customer)(using="archive").import_data(dataset, dry_run=True)
    assert not result.has_errors() and not result.has_validation_errors()
    assert {row.import_type for row in result.rows} <= {"update", "skip"}
    assert len(result.rows) == 3


def test_xlsx_is_cut_at_the_row_limit_with_a_notice(both, settings):
    settings.CONSOLE_XLSX_MAX_ROWS = 2
    data, result = export(Customer, "archive", "xlsx")
    assert result.row_limit == 2 and result.rows == 2
    assert len(read(data, "xlsx")[1]) == 2
    assert "first 2 of 3 rows" in result.notice and "CSV" in result.notice
    _, result = export(Customer, "archive", "csv")
    assert result.notice is None and result.row_limit is None
    settings.CONSOLE_XLSX_MAX_ROWS = 3
    _, result = export(Customer, "archive", "xlsx")
    assert result.notice is None and result.rows == 3


def test_an_abandoned_xlsx_export_removes_its_temporary_files(both):
    result = stream_export(resource_for(Customer)(using="archive"), Customer.objects.using("archive").all(), "xlsx")
    before = temporary_sheet_files()
    next(result.chunks)  # one chunk of rows into the sheet
    [sheet_file] = temporary_sheet_files() - before
    assert Path(sheet_file).exists()
    result.close()
    assert temporary_sheet_files() == before
    assert not Path(sheet_file).exists()


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="Unknown export format"):
        stream_export(resource_for(Customer)(using="archive"), Customer.objects.using("archive").all(), "pdf")


# Streaming and connections ------------------------------------------------------------


def bulk_customers(alias, count, prefix="bulk"):
    Customer.objects.using(alias).bulk_create(
        [Customer(name=f"{prefix} {n}", email=f"{prefix}{n}@example.com", country="DE") for n in range(count)],
        batch_size=1000,
    )


@committed
def test_mysql_streams_on_a_separate_connection_and_releases_it(stream_connections, monkeypatch):
    if not on_mysql():
        pytest.skip("the server-side cursor is the MySQL/MariaDB path")
    monkeypatch.setattr(export_rows, "CHUNK_SIZE", 10)
    bulk_customers("archive", 35)
    resource = resource_for(Customer)(using="archive")
    # Run to the end: the connection closes with the last row.
    result = stream_export(resource, Customer.objects.using("archive").all(), "csv")
    data = b"".join(result.chunks)
    assert result.rows == 35 and data.decode() == stock(Customer, "archive", "csv")
    [connection] = stream_connections
    assert connection is not connections["archive"] and connection.connection is None
    # Stop half-way: close() releases the connection without reading the rest.
    result = stream_export(resource, Customer.objects.using("archive").all(), "csv")
    next(result.chunks), next(result.chunks)
    assert stream_connections[1].connection is not None
    result.close()
    assert stream_connections[1].connection is None
    # An abandoned download: the iterator is dropped and collected.
    result = stream_export(resource, Customer.objects.using("archive").all(), "json")
    next(result.chunks), next(result.chunks)
    assert stream_connections[2].connection is not None
    del result
    gc.collect()
    assert stream_connections[2].connection is None
    # The alias's own connection still works.
    assert Customer.objects.using("archive").count() == 35


def test_inside_a_transaction_the_export_stays_on_the_transactions_connection(stream_connections, both):
    """Test transactions (and atomic blocks) hold uncommitted rows only their own connection sees."""
    data, _ = export(Customer, "archive", "csv")
    assert len(read(data, "csv")[1]) == 3
    assert stream_connections == []


def peak_allocation(result):
    """Peak Python allocation while the export's chunks are produced (and dropped)."""
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in result.chunks)
        return tracemalloc.get_traced_memory()[1], size
    finally:
        tracemalloc.stop()


@committed
def test_streaming_keeps_memory_flat(stream_connections):
    """20,000 rows: the peak stays far below the rows held at once, and no higher than for 5,000 rows."""
    bulk_customers("archive", 20_000)
    resource = resource_for(Customer)(using="archive")
    queryset = Customer.objects.using("archive").all()
    tracemalloc.start()
    try:
        held = list(queryset.values_list(*[f.name for f in Customer._meta.concrete_fields]))
        all_at_once = tracemalloc.get_traced_memory()[1]
        del held
    finally:
        tracemalloc.stop()
    few, _ = peak_allocation(stream_export(resource, queryset[:5000], "csv"))
    result = stream_export(resource, queryset, "csv")
    many, size = peak_allocation(result)
    assert result.rows == 20_000 and size > 20_000 * 100
    assert many < all_at_once / 5, (many, all_at_once)
    assert many < few * 1.5, (many, few)
    assert len(stream_connections) == (2 if on_mysql() else 0)


# The export_records command ---------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_records", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_exports_the_alias_it_is_given_to_a_file(both, tmp_path):
    target = tmp_path / "archive.csv"
    out, _ = run("customers.Customer", "--database", "archive", "-o", str(target))
    names = column(target.read_bytes(), "csv", "name")
    assert sorted(names) == ["Ann Archer-old", "Bob Baker-old", "Carla Cole-old"]
    assert "Exported 3 rows of customers.Customer from 'archive' to " in out and str(target) in out
    assert "rows/s" in out
    record = TransferRecord.objects.using("users").get()
    assert (record.kind, record.database, record.model) == ("export", "archive", "customers.Customer")
    assert record.rows_total == 3
    assert (record.via, record.file_format, record.outcome) == ("command", "csv", "success")
    assert not list(tmp_path.glob(".*part"))  # no temporary file left behind


def test_command_filters_picks_fields_and_infers_the_format(both, tmp_path):
    target = tmp_path / "vips.json"
    run("customers.Customer", "--database", "archive", "-o", str(target), "--filter", "tier=vip", "--fields", "name,id")
    assert json.loads(target.read_bytes()) == [{"id": str(both["archive"]["bob"].pk), "name": "Bob Baker-old"}]
    target = tmp_path / "two.xlsx"
    run("customers.Customer", "--database", "archive", "-o", str(target), "--filter", "country__in=DE,GB")
    assert sorted(column(target.read_bytes(), "xlsx", "name")) == ["Ann Archer-old", "Carla Cole-old"]
    run("customers.Customer", "--database", "archive", "-o", str(target), "--filter", "last_contacted_at__isnull=true")
    assert len(read(target.read_bytes(), "xlsx")[1]) == 3


def test_command_writes_to_stdout_and_reports_on_stderr(both):
    out, err = run("customers.VipCustomer", "--database", "archive", "--format", "tsv")
    assert column(out.encode(), "tsv", "name") == ["Bob Baker-old"]
    assert "Exported 1 rows of customers.VipCustomer from 'archive' to <stdout>" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["customers.Customer", "--database", "nowhere"], "Unknown database 'nowhere'"),
        (["customers.Customer", "--database", "legacy"], "'legacy' does not hold customers.Customer"),
        (["customers.Nope", "--database", "archive"], "Unknown model 'customers.Nope'"),
        (["customers.Customer", "--database", "archive", "--filter", "nosuch=1"], "Cannot resolve keyword 'nosuch'"),
        (["customers.Customer", "--database", "archive", "--filter", "id=abc"], "--filter id=abc"),
        (["customers.Customer", "--database", "archive", "--filter", "id"], "field=value"),
        (["customers.Customer", "--database", "archive", "--fields", "name,nosuch"], "Unknown field 'nosuch'"),
        (["customers.Customer", "--database", "archive", "--format", "xlsx"], "binary"),
    ],
)
def test_command_fails_clearly(args, message):
    with pytest.raises(CommandError, match=message) as failure:
        run(*args)
    assert failure.value.returncode != 0
    assert not TransferRecord.objects.using("users").exists()


def test_command_records_a_failed_export(both, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("admin_site.management.commands.export_records.stream_export", broken)
    with pytest.raises(RuntimeError):
        run("customers.Customer", "--database", "archive", "-o", str(tmp_path / "x.csv"))
    record = TransferRecord.objects.using("users").get()
    assert (record.outcome, record.database, record.kind) == ("failed", "archive", "export")
    assert not (tmp_path / "x.csv").exists()
