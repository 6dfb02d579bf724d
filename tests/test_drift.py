"""Schema drift: the check and ``legacy_drift`` see a legacy table change under its model.

The shipped schema must show no drift.  Every change is made on a copy of the
legacy database (a temporary SQLite file, or a scratch MariaDB database), never
on the shared test database: MariaDB commits DDL at once, so a change there
would leak into every other test.
"""

import importlib
import io

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections
from django.urls import clear_url_caches, reverse

import console.urls
from admin_site.drift import cache_key, check_schema_drift, database_drift
from admin_site.sites import all_sites
from admin_site.transfers.formats import EXPORT_FORMATS
from console.legacy import demo
from console.legacy.models import Custmast, Invoice, Itemmast, ProductPrice, VOpenInvoices
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url, export_file

COPY = "legacy_drift_copy"


def scratch_name():
    """The MariaDB scratch database: ``test_<prefix>_drift``, a name the test user may create."""
    return f"test_{django_settings.TEST_DB_PREFIX}_drift"


@pytest.fixture
def legacy_copy(settings, django_db_setup, django_db_blocker, tmp_path):
    """A fresh copy of the legacy schema under the alias ``COPY``, held by the legacy app; removed afterwards."""
    legacy = connections["legacy"]
    with django_db_blocker.unblock():
        if legacy.vendor == "sqlite":
            config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "legacy-copy.sqlite3")}
            scratch = None
        else:
            scratch = scratch_name()
            try:
                with legacy.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS {legacy.ops.quote_name(scratch)}")
                    cursor.execute(f"CREATE DATABASE {legacy.ops.quote_name(scratch)} CHARACTER SET utf8mb4")
            except DatabaseError as error:
                pytest.skip(f"cannot create the scratch database {scratch} (see SHOW GRANTS): {error}")
            config = {**legacy.settings_dict, "NAME": scratch}
        connections.settings[COPY] = connections.configure_settings({"default": {}, COPY: config})[COPY]
        settings.CONSOLE_DATABASES = {
            **settings.CONSOLE_DATABASES,
            COPY: {"title": "Legacy copy", "colour": "#000000", "apps": ["legacy"]},
        }
        try:
            call_command("create_legacy_schema", database=COPY, verbosity=0)
            yield connections[COPY]
        finally:
            connections[COPY].close()
            del connections[COPY]
            del connections.settings[COPY]
            if scratch:
                with legacy.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS {legacy.ops.quote_name(scratch)}")


@pytest.fixture
def copy_panel(legacy_copy, root_client):
    """The copy served as a panel of its own (``/<COPY>/``), with demo rows; signed in as a superuser.

    The console's URLs are built from ``all_sites()``: rebuilt here with the copy, and again without it after.
    """

    def rebuild():
        all_sites.cache_clear()
        importlib.reload(console.urls)
        clear_url_caches()
        cache.delete(cache_key(COPY))

    demo.load(using=COPY, customers=5)
    rebuild()
    try:
        yield root_client
    finally:
        del django_settings.CONSOLE_DATABASES[COPY]  # the settings fixture restores it after this teardown
        rebuild()


def execute(connection, *sql):
    with connection.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)


def change_column(connection, table, old, new):
    """Redeclare a column: ``MODIFY`` on MySQL; on SQLite, which cannot alter a column, rebuild the table."""
    q = connection.ops.quote_name
    if connection.vendor == "mysql":
        execute(connection, f"ALTER TABLE {q(table)} MODIFY {new}")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
        create = cursor.fetchone()[0]
    assert old in create
    rebuilt = create.replace(old, new).replace(q(table), q(f"{table}_NEW"), 1)
    execute(
        connection,
        rebuilt,
        f"INSERT INTO {q(table + '_NEW')} SELECT * FROM {q(table)}",
        f"DROP TABLE {q(table)}",
        f"ALTER TABLE {q(table + '_NEW')} RENAME TO {q(table)}",
    )


def run_drift_command(alias):
    """``legacy_drift``'s output and exit status."""
    out = io.StringIO()
    try:
        call_command("legacy_drift", database=alias, stdout=out)
    except CommandError as error:
        return out.getvalue(), error.returncode
    return out.getvalue(), 0


def differences(alias):
    return {drift.model: [str(difference) for difference in drift.differences] for drift in database_drift(alias)}


@pytest.mark.django_db(databases=["legacy"])
def test_the_shipped_legacy_schema_has_not_drifted_from_its_models():
    assert differences("legacy") == {}
    assert check_schema_drift(databases=["legacy"]) == []
    output, status = run_drift_command("legacy")
    assert status == 0
    assert "No drift" in output


def test_a_dropped_column_is_reported_with_the_model_inspectdb_writes_now(legacy_copy):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('INVOICE')} DROP COLUMN {q('REMARK')}")

    assert differences(COPY) == {Invoice: ["column REMARK is missing"]}
    output, status = run_drift_command(COPY)
    assert status == 1
    assert "legacy.Invoice (table INVOICE):\n  - column REMARK is missing" in output
    model_code = output.split("class Invoice(models.Model):", 1)[1]
    assert "db_column='PAIDDATE'" in model_code
    assert "REMARK" not in model_code


def test_a_widened_column_is_reported_as_a_length_difference(legacy_copy):
    change_column(
        legacy_copy,
        "PRODUCT_PRICE",
        '"REGION" VARCHAR(10) NOT NULL',
        legacy_copy.ops.quote_name("REGION") + " varchar(40) NOT NULL",
    )

    expected = "column REGION holds 40 characters in the database, 10 in the model"
    assert differences(COPY) == {ProductPrice: [expected]}
    output, status = run_drift_command(COPY)
    assert status == 1
    assert expected in output
    assert "db_column='REGION', max_length=40" in output


def test_a_column_that_became_nullable_is_reported(legacy_copy):
    q = legacy_copy.ops.quote_name
    change_column(legacy_copy, "PRODUCT_PRICE", '"CURRENCY" CHAR(3) NOT NULL', f"{q('CURRENCY')} CHAR(3) NULL")

    assert differences(COPY) == {ProductPrice: ["column CURRENCY allows NULL in the database, not in the model"]}


def test_a_flag_turned_into_a_plain_integer_is_reported_as_a_type_difference(legacy_copy):
    # MySQL stores a flag as TINYINT(1), which the check accepts for a BooleanField; an INT is drift.
    q = legacy_copy.ops.quote_name
    change_column(
        legacy_copy,
        "PRODUCT_PRICE",
        '"DISCONTINUED" BOOLEAN NOT NULL DEFAULT 0',
        f"{q('DISCONTINUED')} INTEGER NOT NULL DEFAULT 0",
    )

    assert differences(COPY) == {
        ProductPrice: ["column DISCONTINUED is IntegerField in the database, BooleanField in the model"]
    }


def test_an_added_column_is_reported_as_extra(legacy_copy):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('INVOICE')} ADD COLUMN {q('DISCOUNT')} DECIMAL(5,2) NULL")

    assert differences(COPY) == {Invoice: ["column DISCOUNT is in the table but not in the model"]}


def test_a_renamed_table_is_reported_missing_by_the_check_and_the_command(legacy_copy, capsys):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('PRODUCT_PRICE')} RENAME TO {q('PRODUCT_PRICE_OLD')}")

    assert differences(COPY) == {ProductPrice: ["table PRODUCT_PRICE is missing"]}
    [warning] = check_schema_drift(databases=[COPY])
    assert warning.id == "console.W010"
    assert warning.obj is ProductPrice
    assert "table PRODUCT_PRICE is missing" in warning.msg
    output, status = run_drift_command(COPY)
    assert status == 1
    assert "legacy.ProductPrice (table PRODUCT_PRICE):\n  - table PRODUCT_PRICE is missing" in output
    assert "inspectdb has no table to read" in output
    assert "Tables no model reads (a missing table may have been renamed): PRODUCT_PRICE_OLD." in output


def test_only_check_with_a_database_compares_the_tables(legacy_copy):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('PRODUCT_PRICE')} RENAME TO {q('PRODUCT_PRICE_OLD')}")

    plain = io.StringIO()
    call_command("check", stdout=plain, stderr=plain)
    assert "console.W010" not in plain.getvalue()
    with_database = io.StringIO()
    call_command("check", databases=[COPY], stdout=with_database, stderr=with_database)
    assert "console.W010" in with_database.getvalue()
    assert "PRODUCT_PRICE is missing" in with_database.getvalue()


@pytest.mark.django_db(databases=["users", "legacy"])
def test_a_page_whose_column_is_gone_names_the_drift_instead_of_a_500(copy_panel, legacy_copy):
    invoice = Invoice.objects.using(COPY).first()
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('INVOICE')} DROP COLUMN {q('REMARK')}")

    for url in (admin_url(COPY, Invoice, "changelist"), admin_url(COPY, Invoice, "change", invoice.pk)):
        response = copy_panel.get(url)
        assert response.status_code == 503, url
        page = response.content.decode()
        assert 'id="schema-drift"' in page
        assert "The table INVOICE (invoices) has changed in the database" in page
        assert "column REMARK is missing" in page
        assert "What the table lacks cannot be shown or saved." in page
        assert "cannot be shown" in page
    # The panel's other pages work, without a banner: their tables are as the models say.
    response = copy_panel.get(admin_url(COPY, Custmast, "changelist"))
    assert response.status_code == 200
    assert 'id="schema-drift"' not in response.content.decode()


@pytest.mark.django_db(databases=["users", "legacy"])
def test_an_added_column_leaves_the_page_working_under_a_banner(copy_panel, legacy_copy):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('INVOICE')} ADD COLUMN {q('DISCOUNT')} DECIMAL(5,2) NULL")

    response = copy_panel.get(admin_url(COPY, Invoice, "changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "column DISCOUNT is in the table but not in the model" in page
    assert "cannot be shown or saved" not in page  # nothing the model reads is gone
    assert str(Invoice.objects.using(COPY).first()) in page  # the rows are still listed
    # Export and import pages carry the banner too.
    response = copy_panel.get(admin_url(COPY, Invoice, "import"))
    assert "column DISCOUNT is in the table but not in the model" in response.content.decode()


@pytest.mark.django_db(databases=["users", "legacy"])
def test_a_renamed_table_is_named_on_its_pages_and_on_the_pages_that_join_it(copy_panel, legacy_copy):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('CUSTMAST')} RENAME TO {q('CUSTOMER_MASTER')}")

    for model in (Custmast, Invoice):  # invoices list their customer: the query joins CUSTMAST
        response = copy_panel.get(admin_url(COPY, model, "changelist"))
        assert response.status_code == 503, model
        assert "table CUSTMAST is missing" in response.content.decode()
    # MariaDB's view over CUSTMAST cannot be read any more: its page says so too.  (SQLite's RENAME
    # rewrites the views that name the table, so there the view follows it and still answers.)
    if legacy_copy.vendor != "mysql":
        return
    response = copy_panel.get(admin_url(COPY, VOpenInvoices, "changelist"))
    assert response.status_code == 503
    assert "V_OPEN_INVOICES cannot be read" in response.content.decode()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_console_home_counts_drifted_tables_per_panel(copy_panel, legacy_copy):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('INVOICE')} DROP COLUMN {q('REMARK')}")
    change_column(
        legacy_copy,
        "PRODUCT_PRICE",
        '"REGION" VARCHAR(10) NOT NULL',
        legacy_copy.ops.quote_name("REGION") + " varchar(40) NOT NULL",
    )

    response = copy_panel.get(reverse("console-home"))
    assert response.status_code == 200
    page = response.content.decode()
    copy_row = page.split(f'data-alias="{COPY}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-drifted="2"' in copy_row
    assert "2 tables drifted" in copy_row
    assert "INVOICE</strong>: column REMARK is missing" in copy_row
    assert "PRODUCT_PRICE</strong>: column REGION holds 40 characters in the database, 10 in the model" in copy_row
    legacy_row = page.split('data-alias="legacy"', 1)[1].split("</tr>", 1)[0]
    assert 'data-drifted="0"' in legacy_row and ">none<" in legacy_row
    customers_row = page.split('data-alias="customers"', 1)[1].split("</tr>", 1)[0]
    assert 'data-drifted="0">—</td>' in customers_row  # no unmanaged model: nothing to compare


def test_add_missing_creates_only_the_tables_an_older_database_lacks(legacy_copy):
    demo.load(using=COPY, customers=5)
    customers = Custmast.objects.using(COPY).count()
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"DROP TABLE {q('INVOICE')}")

    with pytest.raises(CommandError, match="only partly present.*--add-missing"):
        call_command("create_legacy_schema", database=COPY, verbosity=0)
    out = io.StringIO()
    call_command("create_legacy_schema", database=COPY, add_missing=True, stdout=out)

    assert "Added the missing legacy tables" in out.getvalue() and ": INVOICE." in out.getvalue()
    assert differences(COPY) == {}  # the table is back as the model describes it
    assert Custmast.objects.using(COPY).count() == customers  # the tables that were there are untouched
    with legacy_copy.cursor() as cursor:
        indexed = {
            tuple(constraint["columns"])
            for constraint in legacy_copy.introspection.get_constraints(cursor, "INVOICE").values()
            if constraint["index"]
        }
    assert ("CUSTNO",) in indexed  # and its indexes came with it


def test_a_not_null_date_column_is_drift_unless_its_field_writes_no_date_as_the_zero_date(legacy_copy):
    """On MySQL ITEMMAST.CREATED is NOT NULL and its field nullable: the field writes "no date" as 0000-00-00."""
    q = legacy_copy.ops.quote_name
    if legacy_copy.vendor == "mysql":
        # The control: a plain nullable date on a NOT NULL column is still drift.
        change_column(legacy_copy, "INVOICE", "", f"{q('PAIDDATE')} DATE NOT NULL DEFAULT '2000-01-01'")
        expected = {Invoice: ["column PAIDDATE is NOT NULL in the database, nullable in the model"]}
    else:
        # No zero dates on SQLite: the field writes NULL there, so a NOT NULL column is drift for it.
        change_column(
            legacy_copy, "ITEMMAST", '"CREATED" DATE NULL', f"{q('CREATED')} DATE NOT NULL DEFAULT '2000-01-01'"
        )
        expected = {Itemmast: ["column CREATED is NOT NULL in the database, nullable in the model"]}
    assert differences(COPY) == expected


@pytest.mark.django_db(databases=["users", "legacy"])
@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_a_streamed_export_of_a_gone_table_is_the_drift_page_not_an_empty_file(copy_panel, legacy_copy, file_format):
    q = legacy_copy.ops.quote_name
    execute(legacy_copy, f"ALTER TABLE {q('PRODUCT_PRICE')} RENAME TO {q('PRODUCT_PRICE_OLD')}")
    index = str(next(i for i, cls in enumerate(EXPORT_FORMATS) if cls().get_title().lower() == file_format))

    response = export_file(copy_panel, COPY, ProductPrice, index)

    assert response.status_code == 503
    assert not response.streaming
    assert "table PRODUCT_PRICE is missing" in response.content.decode()
