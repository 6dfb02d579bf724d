"""The leak test: every admin path of every panel queries only that panel's database.

Each request is made while the queries of every alias are captured; a query
on another panel's database (or on the console's database touching a domain
table) fails the test, naming the URL and the SQL.  The archive panel holds
a copy of the customers schema, so a path that asks the router instead of
the panel lands on ``customers`` there and is caught.

Three layers are proven separately:
- the panels as shipped (request pin + bound ModelAdmin bases);
- the bound bases alone, with the site's request pin switched off;
- the request pin alone, with every binding override of the bases skipped.
"""

import datetime
from urllib.parse import urlencode

import pytest
from django.contrib.admin import helpers
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from admin_site.composite import url_key
from admin_site.sites import DatabaseAdminSite, all_sites
from console.customers.models import Address, Customer, Order, Tag
from console.legacy.models import ProductPrice, StockMove
from console.profiles.models import Team
from tests.conftest import ALL_DATABASES, seed_customers, seed_users
from tests.utils import admin_url, capture_queries, form_data, management_form
from tests.walk import PanelWalker, seed_panel, unbound_site

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_every_read_path_stays_on_the_panel_database(root_client, panel):
    seed_panel(panel)
    walker = PanelWalker(root_client, all_sites()[panel])
    walker.walk_reads()
    assert walker.visited > 10
    walker.assert_no_leaks()


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_resubmitting_every_change_form_stays_on_the_panel_database(root_client, panel):
    seed_panel(panel)
    walker = PanelWalker(root_client, all_sites()[panel])
    walker.walk_change_forms()
    walker.walk_list_editable()
    walker.assert_no_leaks()


def test_legacy_walk_covers_the_composite_key_and_keyless_pages(root_client):
    """The walk of the legacy panel reaches every page of PRODUCT_PRICE (composite key) and STOCK_MOVE's list."""
    seed_panel("legacy")
    walker = PanelWalker(root_client, all_sites()["legacy"])
    walker.walk_reads()
    walker.walk_change_forms()
    walker.assert_no_leaks()
    visited = set(walker.urls)
    first = ProductPrice.objects.using("legacy").first()
    for view in ("change", "history", "delete"):
        assert ("GET", admin_url("legacy", ProductPrice, view, url_key(first))) in visited, view
    assert ("POST", admin_url("legacy", ProductPrice, "change", url_key(first))) in visited  # the form posted back
    changelist = admin_url("legacy", ProductPrice, "changelist")
    assert ("POST", changelist) in visited  # the "delete selected" confirmation
    filtered = {url for method, url in visited if url.startswith(changelist + "?")}
    assert any("region=" in url for url in filtered) and any("discontinued__exact=" in url for url in filtered)
    assert ("GET", admin_url("legacy", ProductPrice, "export")) in visited
    assert ("POST", admin_url("legacy", ProductPrice, "import")) in visited  # the preview of the exported file
    keyless = admin_url("legacy", StockMove, "changelist")
    assert any(url.startswith(keyless + "?") for method, url in visited)  # its filters
    assert ("GET", admin_url("legacy", StockMove, "export")) in visited
    assert not any(url.startswith(keyless) and method == "POST" for method, url in visited)


#: Write scenarios run on both customer panels, and on archive once more with the
#: request pin off, so that only the ModelAdmin bases keep the writes there.
WRITE_MODES = [
    pytest.param("customers", True, id="customers"),
    pytest.param("archive", True, id="archive"),
    pytest.param("archive", False, id="archive-bases-only"),
]


@pytest.mark.parametrize("panel,pin", WRITE_MODES)
def test_customer_writes_land_only_in_the_panel_database(root_client, monkeypatch, panel, pin):
    monkeypatch.setattr(DatabaseAdminSite, "pin_requests", pin)
    data = seed_customers(panel)
    other = "customers" if panel == "archive" else "archive"
    walker = PanelWalker(root_client, all_sites()[panel])
    vip, loyal = data["tags"]

    # Add a row with no inlines: only save_model decides where it goes.
    response = walker.post(admin_url(panel, Tag, "add"), {"name": "new-tag"})
    assert response.status_code == 302
    assert Tag.objects.using(panel).filter(name="new-tag").exists()

    # Add with an inline address and M2M tags.
    url = admin_url(panel, Customer, "add")
    post = {
        "name": "Eve Evans",
        "email": "EVE@Example.com",
        "country": "it",
        "status": "active",
        "tier": "gold",
        "tags": [str(vip.pk), str(loyal.pk)],
        "notes": "",
        "phone": "",
        **management_form("addresses", total=1),
        "addresses-0-kind": "billing",
        "addresses-0-line1": "Via Roma 1",
        "addresses-0-city": "Roma",
        "addresses-0-postcode": "00100",
        "addresses-0-country": "IT",
        **management_form("orders"),
    }
    response = walker.post(url, post)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    eve = Customer.objects.using(panel).get(email="eve@example.com")
    assert eve.country == "IT"
    assert {t.name for t in eve.tags.all()} == {"vip", "loyal"}
    assert eve.addresses.get().city == "Roma"
    assert not Customer.objects.using(other).filter(email="eve@example.com").exists()

    # Duplicate email (differently cased): a form error, nothing written.
    before = Customer.objects.using(panel).count()
    response = walker.post(url, {**post, "email": "Ann@example.com", "addresses-0-line1": "Other 2"})
    assert response.status_code == 200
    assert "Customer with this Email already exists." in response.content.decode()
    assert Customer.objects.using(panel).count() == before

    # Change: delete the inline address, add another, drop a tag.
    change = admin_url(panel, Customer, "change", eve.pk)
    page = walker.get(change)
    fields = form_data(page.content, "customer_form")
    fields.update({"tags": [str(vip.pk)], "addresses-0-DELETE": "on"})
    fields.update(management_form("addresses", total=2, initial=1))
    fields.update(
        {
            "addresses-1-kind": "shipping",
            "addresses-1-line1": "Via Po 2",
            "addresses-1-city": "Torino",
            "addresses-1-postcode": "10121",
            "addresses-1-country": "IT",
            "addresses-1-customer": str(eve.pk),
        }
    )
    response = walker.post(change, fields)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert [a.city for a in eve.addresses.all()] == ["Torino"]
    assert [t.name for t in eve.tags.all()] == ["vip"]

    # Record a contact (F() update) through the changelist action.
    changelist = admin_url(panel, Customer, "changelist")
    response = walker.post(
        changelist, {"action": "record_contact", helpers.ACTION_CHECKBOX_NAME: [str(eve.pk), str(data["ann"].pk)]}
    )
    assert response.status_code == 302
    assert Customer.objects.using(panel).get(pk=eve.pk).contact_count == 1

    # Delete confirmation lists the cascade; a protected customer cannot go.
    response = walker.get(admin_url(panel, Customer, "delete", data["ann"].pk))
    assert "Cannot delete" in response.content.decode() or "would require deleting" in response.content.decode()
    response = walker.post(admin_url(panel, Customer, "delete", eve.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Customer.objects.using(panel).filter(pk=eve.pk).exists()
    assert not Address.objects.using(panel).filter(customer_id=eve.pk).exists()

    # Bulk delete action on tags, confirmation then deletion.
    tags = [str(vip.pk), str(loyal.pk)]
    response = walker.post(
        admin_url(panel, Tag, "changelist"), {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: tags}
    )
    assert response.status_code == 200
    response = walker.post(
        admin_url(panel, Tag, "changelist"),
        {"action": "delete_selected", "post": "yes", helpers.ACTION_CHECKBOX_NAME: tags},
    )
    assert response.status_code == 302
    assert list(Tag.objects.using(panel).values_list("name", flat=True)) == ["new-tag"]

    # list_editable on addresses.
    address = Address.objects.using(panel).get(customer=data["bob"])
    listed = form_data(walker.get(admin_url(panel, Address, "changelist")).content, "changelist-form")
    row = next(
        name.removesuffix("-id")
        for name, value in listed.items()
        if name.endswith("-id") and value == [str(address.pk)]
    )
    listed.pop("action", None)
    response = walker.post(
        admin_url(panel, Address, "changelist"), {**listed, f"{row}-kind": "shipping", "_save": "Save"}
    )
    assert response.status_code == 302
    assert Address.objects.using(panel).get(pk=address.pk).kind == "shipping"
    walker.assert_no_leaks()

    # Every write is in this panel's history, and in no other panel's.
    logged = LogEntry.objects.using("users").filter(panel__database=panel)
    flags = {(e.object_repr.split(" <")[0], e.action_flag) for e in logged}
    assert {("Eve Evans", ADDITION), ("Eve Evans", CHANGE), ("Eve Evans", DELETION), ("vip", DELETION)} <= flags
    assert not LogEntry.objects.using("users").exclude(panel__database=panel).exists()


@pytest.mark.parametrize("panel,pin", WRITE_MODES)
def test_order_with_lines_updates_totals_in_the_panel_database(root_client, monkeypatch, panel, pin):
    monkeypatch.setattr(DatabaseAdminSite, "pin_requests", pin)
    data = seed_customers(panel)
    walker = PanelWalker(root_client, all_sites()[panel])
    post = {
        "customer": str(data["bob"].pk),
        "number": "B-7",
        "status": "paid",
        "placed_on": "2026-05-04",
        **management_form("lines", total=2),
        "lines-0-sku": "X-1",
        "lines-0-quantity": "3",
        "lines-0-unit_price": "10.00",
        "lines-1-sku": "X-2",
        "lines-1-quantity": "1",
        "lines-1-unit_price": "5.25",
    }
    response = walker.post(admin_url(panel, Order, "add"), post)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    order = Order.objects.using(panel).get(number="B-7")
    assert str(order.total) == "35.25"
    bob = Customer.objects.using(panel).get(pk=data["bob"].pk)
    assert (bob.order_count, str(bob.lifetime_value)) == (1, "35.25")
    # A customer pk that exists only in another database is not a valid choice here.
    stranger = Customer(name="Stranger", email="stranger@example.com", country="US")
    stranger.save(using="customers" if panel == "archive" else "archive")
    response = walker.post(
        admin_url(panel, Order, "add"), {**post, "number": "B-8", "customer": str(stranger.pk + 1000)}
    )
    assert response.status_code == 200
    assert not Order.objects.using(panel).filter(number="B-8").exists()
    walker.assert_no_leaks()


def test_user_and_team_writes_stay_in_users(root_client):
    data = seed_users()
    walker = PanelWalker(root_client, all_sites()["users"])
    response = walker.post(
        reverse("users:auth_user_add"),
        {
            "username": "erin",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
            "usable_password": "true",
            **management_form("profile", total=1),
            "profile-0-display_name": "Erin",
            "profile-0-timezone": "UTC",
            "profile-0-teams": [str(data["team"].pk)],
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    response = walker.post(admin_url("users", Team, "add"), {"name": "Operations", "description": ""})
    assert response.status_code == 200 and "Team with this Name already exists." in response.content.decode()
    walker.assert_no_leaks()


def test_view_on_site_opens_the_card_from_the_panel_database(root_client):
    seed_customers("customers", suffix="-c")
    data = seed_customers("archive", suffix="-a")
    ann = data["ann"]
    ct = ContentType.objects.db_manager("users").get_for_model(Customer)
    walker = PanelWalker(root_client, all_sites()["archive"])
    response = walker.get(reverse("archive:view_on_site", args=[ct.pk, ann.pk]), follow=True)
    assert response.redirect_chain[-1][0].endswith(reverse("archive:customers_customer_card", args=[ann.pk]))
    assert "ann-a@example.com" in response.content.decode()
    walker.assert_no_leaks()


def test_bases_alone_bind_every_path_without_the_request_pin(root_client, monkeypatch):
    """Switch the site pin off: the ModelAdmin bases must keep archive on archive."""
    monkeypatch.setattr(DatabaseAdminSite, "pin_requests", False)
    seed_customers("customers", suffix="-c")
    seed_panel("archive")
    walker = PanelWalker(root_client, all_sites()["archive"], site_views=False)
    walker.walk_reads()
    walker.walk_change_forms()
    walker.walk_list_editable()
    walker.assert_no_leaks()


def test_request_pin_alone_binds_stock_model_admins(root_client, settings):
    """Stock ModelAdmins (every binding override skipped) on a pinned archive site."""
    seed_customers("customers", suffix="-c")
    seed_panel("archive")
    site = unbound_site("archive")
    settings.ROOT_URLCONF = site.urlconf
    walker = PanelWalker(root_client, site.site)
    walker.walk_reads()
    walker.walk_change_forms()
    walker.walk_list_editable()
    walker.assert_no_leaks()


def test_unbound_stock_admins_without_the_pin_do_leak(root_client, settings, monkeypatch):
    """The control experiment: neither layer, and the walk catches leaks."""
    monkeypatch.setattr(DatabaseAdminSite, "pin_requests", False)
    seed_customers("customers", suffix="-c")
    seed_panel("archive")
    site = unbound_site("archive")
    settings.ROOT_URLCONF = site.urlconf
    walker = PanelWalker(root_client, site.site, site_views=False, strict=False)
    walker.walk_reads()
    assert walker.leaks, "a stock admin on an unpinned archive panel must read from customers"


def test_same_pk_histories_stay_apart(root_client):
    for alias in ("customers", "archive"):
        Customer(pk=9001, name="Ann", email="same-pk@example.com", country="DE").save(using=alias)
    ann_c = Customer.objects.using("customers").get(pk=9001)
    for panel, name in (("customers", "Ann in customers"), ("archive", "Ann in archive")):
        change = admin_url(panel, Customer, "change", ann_c.pk)
        fields = form_data(root_client.get(change).content, "customer_form")
        fields["name"] = name
        assert root_client.post(change, fields).status_code == 302
    for panel, mine, theirs in (("customers", "customers", "archive"), ("archive", "archive", "customers")):
        entries = root_client.get(admin_url(panel, Customer, "history", ann_c.pk)).context["action_list"]
        assert [entry.object_repr.split(" <")[0] for entry in entries] == [f"Ann in {mine}"]
        index = root_client.get(reverse(f"{panel}:index")).content.decode()
        assert f"Ann in {mine}" in index and f"Ann in {theirs}" not in index


def test_bound_delete_hooks_delete_on_the_panel_database_whatever_they_are_handed(rf, superuser):
    """Custom actions may hand the hooks a plain queryset or a bare instance."""
    seed_customers("customers")
    seed_customers("archive")
    model_admin = all_sites()["archive"]._registry[Customer]
    request = rf.post("/")
    request.user = superuser
    bob = Customer.objects.using("archive").get(email="bob@example.com")
    model_admin.delete_queryset(request, Customer.objects.filter(pk=bob.pk))
    model_admin.delete_model(request, Customer(pk=Customer.objects.using("archive").get(email="carla@acme.example").pk))
    assert set(Customer.objects.using("archive").values_list("email", flat=True)) == {"ann@example.com"}
    assert Customer.objects.using("customers").count() == 3


def test_date_hierarchy_and_filters_count_only_panel_rows(root_client):
    seed_customers("customers")
    data = seed_customers("archive", suffix="-a")
    Order(customer=data["bob"], number="Z-9", placed_on=datetime.date(2025, 1, 2)).save(using="archive")
    url = admin_url("archive", Order, "changelist") + "?" + urlencode({"placed_on__year": "2025"})
    response = root_client.get(url)
    assert [o.number for o in response.context["cl"].result_list] == ["Z-9"]
    with capture_queries() as log:
        root_client.get(admin_url("archive", Order, "changelist"))
    assert not log.leaks_from("archive")
