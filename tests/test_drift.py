"""Schema drift: the check and ``legacy_drift`` see a legacy table change under its model.

The shipped schema must show no drift.  Every change is made on a copy of the
legacy database (a temporary SQLite file, or a scratch MariaDB database), never
on the shared test database: MariaDB commits DDL at once, so a change there
would leak into every other test.
"""

import io

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections

from admin_site.drift import check_schema_drift, database_drift
from console.legacy.models import Invoice, ProductPrice

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
