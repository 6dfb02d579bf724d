"""A failing database is the database's fault: an import stops at once, says which database, and writes nothing.

Row problems are only ever problems in the file.  Also: a many-to-many column
resolves its ids once per file, not once per row.
"""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connections

from admin_site.models import TransferRecord
from admin_site.transfers import resources
from admin_site.transfers.imports import read_dataset, run_import
from console.customers.models import BusinessCustomer, Customer, Tag
from tests.conftest import ALL_DATABASES
from tests.test_imports import HEADER, confirm, page_text, upload
from tests.utils import capture_queries

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

LOST = OperationalError(2013, "Lost connection to server during query")


def rows(count, prefix="C"):
    return HEADER + "".join(f"{prefix}{i},{prefix.lower()}{i}@example.com,DE,lead,gold\n" for i in range(count))


@pytest.fixture
def insert_fails(monkeypatch):
    """The database goes away while the rows are written (inside the bulk insert)."""

    def lost(*args, **kwargs):
        raise LOST

    monkeypatch.setattr(resources, "create_rows", lost)


def test_the_command_stops_at_once_with_one_message_naming_the_database(tmp_path, insert_fails):
    path = tmp_path / "c.csv"
    path.write_text(rows(5000))
    errors = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_records", "customers.Customer", str(path), "--database", "customers", stderr=errors)
    message = str(raised.value)
    assert "The database 'customers' failed during the import" in message and "nothing was imported" in message
    assert errors.getvalue() == "", "no row is blamed for the database's failure"
    assert Customer.objects.using("customers").count() == 0
    record = TransferRecord.objects.using("users").get()
    assert record.outcome == "failed" and record.rows_new == 0 and record.rows_invalid == 0
    assert "Lost connection" in record.message


def test_a_row_by_row_import_stops_at_the_first_failing_row(monkeypatch):
    """Multi-table children are saved one row at a time: the first lost save stops the import."""
    saves = []

    def lost(self, instance, is_create):
        saves.append(instance)
        raise LOST

    monkeypatch.setattr(resources.DatabaseModelResource, "do_instance_save", lost)
    text = "name,email,country,company_name\n" + "".join(f"B{i},b{i}@example.com,DE,Co {i}\n" for i in range(50))
    resource = resources.resource_for(BusinessCustomer)(using="customers")
    with pytest.raises(OperationalError):
        run_import(resource, read_dataset(text.encode(), "csv"), dry_run=False, via="command")
    assert len(saves) == 1
    assert BusinessCustomer.objects.using("customers").count() == 0


def test_the_confirm_page_blames_the_database_not_the_file(root_client, monkeypatch):
    preview = upload(root_client, "customers", Customer, rows(3))
    monkeypatch.setattr(resources, "create_rows", lambda *a, **k: (_ for _ in ()).throw(LOST))
    response = confirm(root_client, "customers", Customer, preview)
    assert response.status_code == 302
    messages = [str(m) for m in root_client.get(response["Location"]).context["messages"]]
    assert any("The database 'customers' failed during the import" in m for m in messages), messages
    assert not any("Correct the file" in m for m in messages)
    assert Customer.objects.using("customers").count() == 0
    assert TransferRecord.objects.using("users").get().outcome == "failed"


def test_a_preview_whose_database_fails_says_so(root_client, monkeypatch):
    def lost(*args, **kwargs):
        raise LOST

    monkeypatch.setattr(resources, "find_unique_conflicts", lost)
    response = upload(root_client, "customers", Customer, rows(3))
    assert response.status_code == 302
    follow = root_client.get(response["Location"])
    messages = [str(m) for m in follow.context["messages"]]
    assert any("The database 'customers' failed during checking the file" in m for m in messages), messages
    assert "Correct the file" not in page_text(follow)


def test_a_tags_column_resolves_each_tag_once_per_file():
    vip, loyal = Tag.objects.using("customers").bulk_create([Tag(name="vip"), Tag(name="loyal")])
    text = "name,email,country,tags\n" + "".join(
        f'C{i},c{i}@example.com,DE,"{vip.pk},{loyal.pk}"\n' if i % 2 else f"C{i},c{i}@example.com,DE,{vip.pk}\n"
        for i in range(3000)
    )
    resource = resources.resource_for(Customer)(using="customers")
    with capture_queries(["customers"]) as log:
        result = run_import(resource, read_dataset(text.encode(), "csv"), dry_run=True)
    assert not result.problems
    tag_lookups = [q for q in log.on("customers") if "customers_tag" in q and "customers_customer_tags" not in q]
    assert len(tag_lookups) <= 2, tag_lookups[:5]


def test_an_unknown_tag_is_still_a_row_error_after_the_known_ones_are_remembered():
    vip = Tag.objects.using("customers").create(name="vip")
    text = "name,email,country,tags\n" + f'A,a@example.com,DE,{vip.pk}\nB,b@example.com,DE,"{vip.pk},999999"\n'
    result = run_import(
        resources.resource_for(Customer)(using="customers"), read_dataset(text.encode(), "csv"), dry_run=True
    )
    assert [(p.row, p.column) for p in result.problems] == [(3, "tags")]
    assert "999999" in result.problems[0].message


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_killed_connection_on_mariadb_is_one_database_failure(tmp_path, monkeypatch):
    connection = connections["customers"]
    if connection.vendor != "mysql":
        pytest.skip("a real KILL CONNECTION needs MariaDB")
    original, calls = resources.create_rows, []

    def kill_on_second_batch(model, instances, using, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            with connection.cursor() as cursor:
                cursor.execute("SELECT CONNECTION_ID()")
                (thread_id,) = cursor.fetchone()
            killer = connections.create_connection("customers")
            with killer.cursor() as cursor:
                cursor.execute(f"KILL CONNECTION {int(thread_id)}")
            killer.close()
        return original(model, instances, using, **kwargs)

    monkeypatch.setattr(resources, "create_rows", kill_on_second_batch)
    path = tmp_path / "c.csv"
    path.write_text(rows(5000))
    errors = io.StringIO()
    with pytest.raises(CommandError, match="The database 'customers' failed during the import"):
        call_command("import_records", "customers.Customer", str(path), "--database", "customers", stderr=errors)
    assert errors.getvalue() == ""
    connection.close()
    assert Customer.objects.using("customers").count() == 0
    assert TransferRecord.objects.using("users").get().outcome == "failed"
