"""``V_OPEN_INVOICES`` is a database view: the panel offers no way to write it and accepts none.

A view cannot take an INSERT (MySQL refuses one over a join; SQLite refuses any),
so every write path must be absent from the pages and refused when posted by
hand, before it reaches the database: nothing written, no 500.
"""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from console.legacy import demo
from console.legacy.models import Custmast, Invoice, VOpenInvoices
from tests.utils import admin_url, capture_queries

pytestmark = pytest.mark.django_db(databases=["users", "legacy"])


@pytest.fixture
def open_invoice():
    demo.load(using="legacy", customers=10)
    invoice = VOpenInvoices.objects.using("legacy").first()
    assert invoice is not None
    return invoice


def snapshot():
    """Every row behind the view, as stored."""
    return (
        list(Invoice.objects.using("legacy").order_by("pk").values_list()),
        list(Custmast.objects.using("legacy").order_by("pk").values_list()),
    )


def url(view, *args):
    return admin_url("legacy", VOpenInvoices, view, *args)


def test_the_list_offers_reading_and_exporting_only(root_client, open_invoice):
    response = root_client.get(url("changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{url("export")}' in page  # the object tools are there: exporting reads
    assert url("add") not in page and url("import") not in page
    assert set(response.context["cl"].model_admin.get_actions(response.wsgi_request)) == {"export_admin_action"}
    assert 'value="delete_selected"' not in page
    assert response.context["cl"].list_editable == ()


def test_the_detail_page_has_no_form_to_save_and_no_delete_link(root_client, open_invoice):
    response = root_client.get(url("change", open_invoice.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert not response.context["has_change_permission"]
    assert not re.search(r'name="_(save|continue|addanother|saveasnew)"', page)
    assert url("delete", open_invoice.pk) not in page
    assert not re.search(r'<(input|select|textarea)[^>]+name="(custname|amount|duedate)', page)


@pytest.mark.parametrize(
    "view, data",
    [
        ("add", {"invno": "999999", "custno": "1", "custname": "X", "amount": "1.00", "currency": "EUR"}),
        ("change", {"custname": "Renamed", "amount": "0.01", "_save": "Save"}),
        ("delete", {"post": "yes"}),
        ("import", {"format": "0", "import_file": "invno,custname\n{pk},Renamed\n"}),
        ("process_import", {"import_file_name": "x.csv", "original_file_name": "x.csv", "format": "0"}),
        ("changelist", {"action": "delete_selected", "_selected_action": "{pk}", "index": "0", "post": "yes"}),
        ("changelist", {"_save": "Save", "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-invno": "{pk}"}),
    ],
)
def test_every_write_is_refused_and_nothing_is_written(root_client, open_invoice, view, data):
    pk = open_invoice.pk
    data = {key: value.format(pk=pk) for key, value in data.items()}
    if "import_file" in data:
        data["import_file"] = SimpleUploadedFile("open.csv", data["import_file"].encode())
    args = (pk,) if view in ("change", "delete") else ()
    before = snapshot()
    with capture_queries(["legacy"]) as log:
        response = root_client.post(url(view, *args), data)
    assert response.status_code in (403, 404, 405)
    assert log.writes_on("legacy") == []
    assert snapshot() == before


def test_the_export_action_is_still_accepted(root_client, open_invoice):
    """The control: a POST to the list is refused for writing, not for being a POST."""
    response = root_client.post(
        url("changelist"), {"action": "export_admin_action", "_selected_action": str(open_invoice.pk), "index": "0"}
    )
    assert response.status_code == 200
    assert "export" in response.content.decode().lower()
