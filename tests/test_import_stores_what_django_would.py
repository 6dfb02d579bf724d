"""The new-rows path stores exactly what Django (and stock django-import-export) would store."""

import datetime

import pytest
import tablib
from django.utils import timezone
from import_export import resources as stock_resources

from admin_site.pinning import using_database
from admin_site.transfers import imports
from admin_site.transfers import resources as console_resources
from admin_site.transfers.imports import read_dataset, run_import
from tests.conftest import ALL_DATABASES
from tests.importmodels.models import Gadget

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

ROWS = "name,price,quantity\nLamp,12,3\nChair,40,1\nDesk,150,2\n"
COMPARED = ("name", "price", "quantity", "total", "status", "colour")


class StockGadgetResource(stock_resources.ModelResource):
    class Meta:
        model = Gadget


def stored(alias):
    return sorted(Gadget.objects.using(alias).values_list(*COMPARED))


def test_the_new_rows_path_stores_what_stock_import_export_stores(monkeypatch):
    """Generated column, database default, auto_now and callable default: the same rows either way."""
    written = []
    original = console_resources.create_rows
    monkeypatch.setattr(console_resources, "create_rows", lambda *a, **k: written.append(1) or original(*a, **k))
    monkeypatch.setattr(
        stock_resources.ModelResource, "import_row", lambda *a, **k: pytest.fail("the console's rows went row by row")
    )
    started = timezone.now() - datetime.timedelta(seconds=1)
    resource = console_resources.resource_for(Gadget)(using="customers")
    result = run_import(resource, read_dataset(ROWS.encode(), "csv"), dry_run=False, via="command")
    assert not result.problems, [str(p) for p in result.problems]
    assert written, "the rows went through bulk_create"
    monkeypatch.undo()

    with using_database("archive"):
        stock = StockGadgetResource().import_data(tablib.Dataset().load(ROWS, format="csv"), use_transactions=True)
    assert not stock.has_errors() and not stock.has_validation_errors()

    assert (
        stored("customers")
        == stored("archive")
        == [
            ("Chair", 40, 1, 40, "draft", "grey"),
            ("Desk", 150, 2, 300, "draft", "grey"),
            ("Lamp", 12, 3, 36, "draft", "grey"),
        ]
    )
    for alias in ("customers", "archive"):
        stamps = list(Gadget.objects.using(alias).values_list("updated_at", flat=True))
        assert all(started <= stamp <= timezone.now() for stamp in stamps), (alias, stamps)
    # The instances the admin logs carry their new pks.
    assert all(row.instance is None or row.instance.pk for row in result.rows)


def test_a_preview_of_new_rows_writes_nothing():
    resource = console_resources.resource_for(Gadget)(using="customers")
    result = run_import(resource, read_dataset(ROWS.encode(), "csv"), dry_run=True)
    assert not result.problems and result.totals["new"] == 3
    assert Gadget.objects.using("customers").count() == 0


def test_the_admin_the_command_and_the_bench_share_run_import(root_client, tmp_path, monkeypatch):
    """One import path: the admin's preview and confirm, and the command, all call ``run_import``."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    from admin_site.management.commands import import_records
    from console.customers.models import Customer
    from tests.utils import admin_url, form_data

    calls = []
    original = imports.run_import

    def counting(*args, **kwargs):
        calls.append(kwargs.get("via", "admin"))
        return original(*args, **kwargs)

    monkeypatch.setattr(console_resources, "run_import", counting)
    monkeypatch.setattr(import_records, "run_import", counting)
    text = b"name,email,country\nAnn,ann@example.com,DE\n"
    preview = root_client.post(
        admin_url("customers", Customer, "import"), {"format": "0", "import_file": SimpleUploadedFile("c.csv", text)}
    )
    fields = form_data(preview.content)
    data = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert root_client.post(admin_url("customers", Customer, "process_import"), data).status_code == 302
    path = tmp_path / "c.csv"
    path.write_bytes(b"name,email,country\nBob,bob@example.com,DE\n")
    call_command("import_records", "customers.Customer", str(path), database="customers", verbosity=0)
    assert calls == ["admin", "admin", "command"]
    assert Customer.objects.using("customers").count() == 2
