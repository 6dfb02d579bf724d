"""The legacy app: shipped schema, models that match it, CRUD through them, demo data, admin.

The legacy models are ``managed = False``, so the test databases get their
tables from ``create_legacy_schema``, exactly as development and production
databases do: ``conftest.django_db_setup`` runs it for the whole suite.
"""

import ast
import datetime
import io
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connections
from django.urls import reverse

from admin_site.sites import all_sites
from console.legacy import demo
from console.legacy.management.commands import create_legacy_schema
from console.legacy.models import Custmast, Invoice, ProductPrice, StockMove, VOpenInvoices
from console.legacy.schema import SCHEMA_FILES, created_names, schema_file, statements

pytestmark = pytest.mark.django_db(databases=["legacy"])


def schema_names():
    return created_names(schema_file(connections["legacy"].vendor).read_text(encoding="utf-8"))


def run_schema_command():
    out = io.StringIO()
    call_command("create_legacy_schema", database="legacy", stdout=out)
    return out.getvalue()


# The schema files and the command.


def test_both_dialects_create_the_same_tables_and_view():
    names = {vendor: created_names(path.read_text(encoding="utf-8")) for vendor, path in SCHEMA_FILES.items()}
    assert (
        names["mysql"]
        == names["sqlite"]
        == [
            "CUSTMAST",
            "INVOICE",
            "PRODUCT_PRICE",
            "STOCK_MOVE",
            "V_OPEN_INVOICES",
            "ITEMMAST",
        ]
    )


def test_statements_are_split_where_sql_ends_them_and_comments_are_dropped():
    sql = (
        "-- a comment; not a statement\nCREATE TABLE A (X INT, Y VARCHAR(3) DEFAULT ';'); -- trailing\n"
        "CREATE VIEW V AS\nSELECT X FROM A;\n"
    )
    assert statements(sql) == ["CREATE TABLE A (X INT, Y VARCHAR(3) DEFAULT ';')", "CREATE VIEW V AS\nSELECT X FROM A"]


def test_schema_command_created_every_table_and_the_view():
    connection = connections["legacy"]
    with connection.cursor() as cursor:
        kinds = {info.name: info.type for info in connection.introspection.get_table_list(cursor)}
    assert {name: kinds.get(name) for name in schema_names()} == {
        "CUSTMAST": "t",
        "INVOICE": "t",
        "PRODUCT_PRICE": "t",
        "STOCK_MOVE": "t",
        "V_OPEN_INVOICES": "v",
        "ITEMMAST": "t",
    }


def test_schema_command_is_idempotent():
    connection = connections["legacy"]
    before = connection.introspection.table_names(include_views=True)
    assert "already exists" in run_schema_command()
    assert connection.introspection.table_names(include_views=True) == before


def test_schema_command_refuses_a_partial_schema(monkeypatch):
    """Some tables present, some missing: name both and create nothing."""
    monkeypatch.setattr(create_legacy_schema, "created_names", lambda sql: [*created_names(sql), "MISSING_TABLE"])
    with pytest.raises(CommandError, match=r"only partly present.*CUSTMAST.*exist, MISSING_TABLE do not"):
        run_schema_command()


# Models against inspectdb: schema and models cannot drift apart.

#: inspectdb's field class -> the classes our hand fixes may turn it into.
FIXED_TYPES = {
    "IntegerField": {"BooleanField", "ForeignKey"},
    # Its own internal type keeps Django's MySQL converter off zero dates (console/legacy/fields.py).
    "DateTimeField": {"ZeroDateTimeField"},
}


def inspected_tables(alias):
    """inspectdb's output for ``alias``, parsed: db_table -> {column: (field class, primary key?)}."""
    out = io.StringIO()
    call_command("inspectdb", database=alias, include_views=True, stdout=out)
    tables = {}
    for model in (node for node in ast.parse(out.getvalue()).body if isinstance(node, ast.ClassDef)):
        columns, names, composite = {}, {}, ()
        for node in model.body:
            if isinstance(node, ast.ClassDef) and node.name == "Meta":
                meta = {stmt.targets[0].id: stmt.value for stmt in node.body if isinstance(stmt, ast.Assign)}
                db_table = ast.literal_eval(meta["db_table"])
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                name, call = node.targets[0].id, node.value
                kind = call.func.attr
                if kind == "CompositePrimaryKey":
                    composite = [ast.literal_eval(arg) for arg in call.args]
                    continue
                options = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
                column = options.get("db_column") or (f"{name}_id" if kind in ("ForeignKey", "OneToOneField") else name)
                names[name] = column
                columns[column] = (kind, options.get("primary_key", False))
        # inspectdb 5.2 names composite key parts by column, later versions by field (ticket #37203).
        for part in composite:
            column = names.get(part, part)
            columns[column] = (columns[column][0], True)
        tables[db_table] = columns
    return tables


def test_every_schema_table_has_a_model_and_every_model_a_table():
    by_table = {model._meta.db_table: model for model in apps.get_app_config("legacy").get_models()}
    assert sorted(by_table) == sorted(schema_names())


@pytest.mark.parametrize("table", ["CUSTMAST", "INVOICE", "PRODUCT_PRICE", "STOCK_MOVE", "V_OPEN_INVOICES", "ITEMMAST"])
def test_model_columns_match_what_inspectdb_reports(table):
    inspected = inspected_tables("legacy")[table]
    model = next(m for m in apps.get_app_config("legacy").get_models() if m._meta.db_table == table)
    fields = {field.column: field for field in model._meta.concrete_fields}
    assert set(fields) == set(inspected)
    pk_columns = {field.column for field in model._meta.pk_fields}
    inspected_pk = {column for column, (_, is_pk) in inspected.items() if is_pk}
    # A view, or a table without a key (STOCK_MOVE), has no key for inspectdb to find; ours is chosen by hand.
    assert pk_columns == inspected_pk or ((table.startswith("V_") or table == "STOCK_MOVE") and not inspected_pk)
    for column, (kind, _) in inspected.items():
        ours = fields[column].get_internal_type()
        assert ours == kind or ours in FIXED_TYPES.get(kind, ()), f"{table}.{column}: {ours} vs inspectdb {kind}"


# CRUD through the models.


def make_customer(**fields):
    values = {"name": "Becker Metallbau GmbH", "class_field": "A", "opened": datetime.date(2001, 5, 2), **fields}
    return Custmast.objects.using("legacy").create(**values)


def raw_row(table, columns, key_column, key):
    """One row read with plain SQL: proves what the columns hold, not what the ORM says."""
    quote = connections["legacy"].ops.quote_name
    sql = f"SELECT {', '.join(map(quote, columns))} FROM {quote(table)} WHERE {quote(key_column)} = %s"
    with connections["legacy"].cursor() as cursor:
        cursor.execute(sql, [key])
        return cursor.fetchone()


def test_customer_crud_with_class_column_and_flags():
    changed = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    customer = make_customer(active=False, on_hold=True, credit_limit=Decimal("2500.50"), lastchg=changed)
    assert raw_row("CUSTMAST", ["CLASS", "ACTIVE", "ON_HOLD"], "CUSTNO", customer.custno) == ("A", 0, 1)

    customer = Custmast.objects.using("legacy").get(custno=customer.custno)
    assert (customer.class_field, customer.active, customer.on_hold) == ("A", False, True)
    assert type(customer.active) is bool and type(customer.on_hold) is bool
    assert (customer.credit_limit, customer.lastchg) == (Decimal("2500.50"), changed)

    customer.class_field, customer.active, customer.on_hold = "B", True, False
    customer.save(using="legacy")
    assert raw_row("CUSTMAST", ["CLASS", "ACTIVE", "ON_HOLD"], "CUSTNO", customer.custno) == ("B", 1, 0)
    assert list(Custmast.objects.using("legacy").filter(active=True, on_hold=False, class_field="B")) == [customer]

    customer.delete(using="legacy")
    assert not Custmast.objects.using("legacy").exists()


def test_defaults_follow_the_schema():
    customer = make_customer()
    customer.refresh_from_db(using="legacy")
    assert (customer.active, customer.on_hold, customer.credit_limit, customer.class_field) == (
        True,
        False,
        Decimal("0.00"),
        "A",
    )


def test_invoice_customer_foreign_key_and_open_invoices_view():
    ann = make_customer(name="Ann Archer KG")
    bob = make_customer(name="Bob Baker AG")
    day = datetime.date(2026, 3, 1)
    unpaid = Invoice.objects.using("legacy").create(
        customer=ann, invdate=day, duedate=day + datetime.timedelta(days=30), amount=Decimal("120.00")
    )
    Invoice.objects.using("legacy").create(
        customer=bob, invdate=day, duedate=day, amount=Decimal("80.00"), paid=True, paiddate=day
    )
    assert raw_row("INVOICE", ["CUSTNO", "PAID"], "INVNO", unpaid.invno) == (ann.custno, 0)

    invoice = Invoice.objects.using("legacy").select_related("customer").get(invno=unpaid.invno)
    assert invoice.customer == ann and invoice.paid is False
    assert list(ann.invoices.all()) == [invoice]
    assert list(
        Invoice.objects.using("legacy").filter(customer__name__startswith="Bob").values_list("paid", flat=True)
    ) == [True]

    open_invoice = VOpenInvoices.objects.using("legacy").get()
    assert (open_invoice.invno, open_invoice.custno, open_invoice.custname) == (unpaid.invno, ann.custno, ann.name)
    assert open_invoice.amount == Decimal("120.00")

    invoice.paid, invoice.paiddate = True, day
    invoice.save(using="legacy")
    assert not VOpenInvoices.objects.using("legacy").exists()


def test_product_price_composite_key_and_from_column():
    valid_from = datetime.date(2026, 1, 1)
    ProductPrice.objects.using("legacy").create(
        product_code="P-00001", region="DE", price=Decimal("9.90"), from_field=valid_from
    )
    ProductPrice.objects.using("legacy").create(
        product_code="P-00001", region="CH", price=Decimal("10.90"), currency="CHF", from_field=valid_from
    )
    assert raw_row("PRODUCT_PRICE", ["FROM", "DISCONTINUED"], "REGION", "CH") == (valid_from, 0)

    price = ProductPrice.objects.using("legacy").get(pk=("P-00001", "DE"))
    assert (price.from_field, price.currency, price.discontinued) == (valid_from, "EUR", False)
    price.from_field, price.discontinued = datetime.date(2026, 7, 1), True
    price.save(using="legacy")
    assert raw_row("PRODUCT_PRICE", ["FROM", "DISCONTINUED"], "REGION", "DE") == (datetime.date(2026, 7, 1), 1)
    assert ProductPrice.objects.using("legacy").filter(from_field__gte=datetime.date(2026, 7, 1)).get() == price

    price.delete(using="legacy")
    assert list(ProductPrice.objects.using("legacy").values_list("region", flat=True)) == ["CH"]


# Demo data.


def test_demo_load_inserts_rows_once():
    counts = demo.load(using="legacy", customers=60)
    assert counts["CUSTMAST"] == Custmast.objects.using("legacy").count() == 60
    assert counts["INVOICE"] == Invoice.objects.using("legacy").count() > 60
    assert counts["PRODUCT_PRICE"] == ProductPrice.objects.using("legacy").count() > 0
    assert counts["STOCK_MOVE"] == StockMove.objects.using("legacy").count() > 0
    # Every invoice names an existing customer, though the database would not insist.
    assert not Invoice.objects.using("legacy").exclude(customer__in=Custmast.objects.using("legacy")).exists()
    assert VOpenInvoices.objects.using("legacy").count() == Invoice.objects.using("legacy").filter(paid=False).count()

    assert demo.load(using="legacy", customers=60) == {}
    assert Custmast.objects.using("legacy").count() == 60


def test_demo_load_is_deterministic():
    def snapshot():
        return (
            list(Custmast.objects.using("legacy").values_list()),
            list(Invoice.objects.using("legacy").values_list()),
            list(ProductPrice.objects.using("legacy").values_list()),
            list(StockMove.objects.using("legacy").values_list()),
        )

    demo.load(using="legacy", customers=30)
    first = snapshot()
    for model in (Invoice, Custmast, ProductPrice):
        model.objects.using("legacy").all().delete()
    with connections["legacy"].cursor() as cursor:  # no key: not a table Django may delete from row by row
        cursor.execute(f"DELETE FROM {connections['legacy'].ops.quote_name('STOCK_MOVE')}")
    demo.load(using="legacy", customers=30)
    assert snapshot() == first


# The admin panel.


@pytest.mark.django_db(databases=["users", "legacy"])
def test_legacy_panel_pages(client):
    client.force_login(User.objects.db_manager("users").create_superuser("root", "root@example.com", "pw"))
    demo.load(using="legacy", customers=20)
    invoice = Invoice.objects.using("legacy").filter(paid=False).first()

    for model in (Custmast, Invoice, VOpenInvoices):
        assert client.get(reverse(f"legacy:legacy_{model._meta.model_name}_changelist")).status_code == 200
    changelist = reverse("legacy:legacy_invoice_changelist")
    response = client.get(changelist, {"customer__custno__exact": invoice.customer_id, "paid__exact": "0"})
    assert invoice in response.context["cl"].result_list
    assert client.get(reverse("legacy:legacy_invoice_change", args=[invoice.pk])).status_code == 200
    assert client.get(reverse("legacy:legacy_custmast_change", args=[invoice.customer_id])).status_code == 200

    # The view is read-only.
    view_admin = client.get(reverse("legacy:legacy_vopeninvoices_change", args=[invoice.pk]))
    assert view_admin.status_code == 200 and not view_admin.context["has_change_permission"]
    assert client.get(reverse("legacy:legacy_vopeninvoices_add")).status_code == 403
    assert all_sites()["legacy"].is_registered(ProductPrice)
