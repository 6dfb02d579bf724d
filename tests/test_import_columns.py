"""The import page offers only the columns an import can set; a file's other columns are ignored, and named.

Computed and system fields (``order_count``, ``lifetime_value``,
``contact_count``, ``created_at``, a user's ``last_login``, a ``dehydrate_``
column, a related row's value) are exported, since they are useful to read,
but never imported.  A file that has them (an unchanged export, typically)
imports its other columns, and the preview names the ignored ones; an
error instead would make an export impossible to import back.
"""

import pytest
from django.contrib.auth.models import User
from django.urls import NoReverseMatch
from import_export import fields as ie_fields

from admin_site.sites import all_sites
from admin_site.transfers.imports import read_dataset, run_import
from admin_site.transfers.resources import DatabaseModelResource
from console.customers.models import Customer, Order
from tests.conftest import ALL_DATABASES, seed_customers
from tests.test_imports import confirm, page_text, upload
from tests.utils import admin_url

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def import_page_columns(client, panel, model):
    response = client.get(admin_url(panel, model, "import"))
    assert response.status_code == 200
    (_, columns), *others = response.context["fields_list"]
    # A composite-key model offers a second choice ("update existing rows only"): the same columns.
    assert all(other == columns for _, other in others), others
    return columns, page_text(response)


def import_cases():
    """(panel, model) of every ModelAdmin that offers an import."""
    return [
        pytest.param(panel, model, id=f"{panel}-{model._meta.label}")
        for panel, site in all_sites().items()
        for model, model_admin in site._registry.items()
        if hasattr(model_admin, "has_import_permission") and has_import_page(panel, model)
    ]


def has_import_page(panel, model):
    """A table without a key (``STOCK_MOVE``) has no import address at all."""
    try:
        admin_url(panel, model, "import")
    except NoReverseMatch:
        return False
    return True


@pytest.mark.parametrize(("panel", "model"), import_cases())
def test_every_import_page_lists_only_editable_fields_the_system_does_not_set(root_client, panel, model):
    response = root_client.get(admin_url(panel, model, "import"))
    if response.status_code == 403:
        pytest.skip(f"{model._meta.label} on {panel} takes no import")
    columns, _ = import_page_columns(root_client, panel, model)
    assert columns, "an import page that lists no column"
    opts = model._meta
    for column in columns:
        field = opts.get_field(column)
        assert field.editable and not getattr(field, "generated", False), f"{column} is offered for import"
        assert column not in DatabaseModelResource.system_fields
    # Nothing editable is hidden: every editable concrete field but secrets is offered.
    editable = {f.name for f in opts.concrete_fields if f.editable and not f.generated}
    secret = {"password"} | set(getattr(model, "console_secret_fields", ()))
    assert editable - secret - set(DatabaseModelResource.system_fields) <= set(columns)


def test_the_customers_import_page_names_no_computed_column(root_client):
    columns, text = import_page_columns(root_client, "customers", Customer)
    assert {"name", "email", "phone", "tags"} <= set(columns)
    for computed in ("order_count", "lifetime_value", "contact_count", "created_at", "updated_at", "reference"):
        assert computed not in columns
    shown = text.split("This importer will import the following fields:", 1)[1][:600]
    assert "order_count" not in shown and "name" in shown


def test_users_import_page_offers_no_login_times_or_password(root_client):
    columns, _ = import_page_columns(root_client, "users", User)
    assert "username" in columns
    assert not {"last_login", "date_joined", "password"} & set(columns)


def test_computed_columns_in_a_file_are_ignored_and_named_in_the_preview(root_client):
    """New rows: the counters start at their defaults, whatever the file says."""
    content = (
        "name,email,country,status,tier,order_count,lifetime_value,contact_count,created_at\n"
        "Ann,a@example.com,DE,lead,gold,99,12345.67,7,2001-01-01 00:00:00\n"
    )
    preview = upload(root_client, "customers", Customer, content)
    text = page_text(preview)
    assert "Not imported, set by the console: order_count, lifetime_value, contact_count, created_at." in text
    assert "1 new" in text and Customer.objects.using("customers").count() == 0
    assert confirm(root_client, "customers", Customer, preview).status_code == 302
    ann = Customer.objects.using("customers").get()
    assert (ann.name, ann.order_count, ann.lifetime_value, ann.contact_count) == ("Ann", 0, 0, 0)
    assert ann.created_at.year != 2001


def test_a_row_that_differs_only_in_ignored_columns_is_unchanged(root_client):
    seed_customers("customers")
    ann = Customer.objects.using("customers").get(email="ann@example.com")
    stored = (ann.order_count, ann.lifetime_value, ann.contact_count, ann.updated_at)
    content = (
        "id,name,email,country,status,tier,order_count,lifetime_value,contact_count\n"
        f"{ann.pk},{ann.name},{ann.email},{ann.country},{ann.status},{ann.tier},999,1.00,42\n"
    )
    preview = upload(root_client, "customers", Customer, content)
    assert (preview.context["result"].totals["update"], preview.context["result"].totals["skip"]) == (0, 1)
    assert confirm(root_client, "customers", Customer, preview).status_code == 302
    ann.refresh_from_db()
    assert (ann.order_count, ann.lifetime_value, ann.contact_count, ann.updated_at) == stored


class OrderWithComputedColumns(DatabaseModelResource):
    """An order with a related row's value, a ``dehydrate_`` column and a property-like attribute."""

    customer_name = ie_fields.Field(attribute="customer__name", column_name="customer_name")
    shout = ie_fields.Field(column_name="shout")
    label = ie_fields.Field(attribute="label", column_name="label")

    class Meta:
        model = Order
        fields = ["id", "number", "customer", "placed_on", "customer_name", "shout", "label"]
        import_id_fields = ["id"]

    def dehydrate_shout(self, order):
        return order.number.upper()


def test_declared_computed_columns_are_export_only():
    """A resource's own computed columns: not importable, ignored in a file, and the related row is untouched."""
    seed_customers("customers")
    resource = OrderWithComputedColumns(using="customers")
    assert resource.importable_columns() == ["id", "number", "customer", "placed_on"]
    order = Order.objects.using("customers").select_related("customer").first()
    content = (
        "id,number,customer,placed_on,customer_name,shout,label\n"
        f"{order.pk},{order.number},{order.customer_id},{order.placed_on:%Y-%m-%d},Somebody Else,LOUD,x\n"
    )
    result = run_import(resource, read_dataset(content.encode(), "csv"), dry_run=False, via="command")
    assert not result.problems
    assert result.ignored_columns == ["customer_name", "shout", "label"]
    assert (result.totals["update"], result.totals["skip"]) == (0, 1)
    order.customer.refresh_from_db()
    assert order.customer.name != "Somebody Else"
