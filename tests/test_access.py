"""Who may enter which panel: every URL kind answers a redirect to staff without access."""

from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from console.customers.models import Customer, VipCustomer
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import admin_url

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def make_staff(username, *perms, active=True, staff=True):
    user = User.objects.db_manager("users").create_user(username, password="pw", is_staff=staff, is_active=active)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.using("users").get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.db_manager("users").get(pk=user.pk)  # fresh permission cache


def panel_urls(panel, customer):
    ct = ContentType.objects.db_manager("users").get_for_model(Customer)
    return [
        reverse(f"{panel}:index"),
        reverse(f"{panel}:app_list", args=["customers"]),
        admin_url(panel, Customer, "changelist"),
        admin_url(panel, Customer, "add"),
        admin_url(panel, Customer, "change", customer.pk),
        admin_url(panel, Customer, "history", customer.pk),
        admin_url(panel, Customer, "delete", customer.pk),
        admin_url(panel, Customer, "card", customer.pk),
        reverse(f"{panel}:autocomplete") + "?app_label=customers&model_name=address&field_name=customer&term=a",
        reverse(f"{panel}:view_on_site", args=[ct.pk, customer.pk]),
        reverse(f"{panel}:jsi18n"),
        reverse(f"{panel}:password_change"),
    ]


@pytest.mark.parametrize(
    "user_kind",
    ["no_panel_permission", "other_panel_permission", "inactive_with_permission", "not_staff_with_permission"],
)
def test_every_url_of_a_panel_turns_away_users_without_access(client, user_kind):
    customer = seed_customers("customers")["ann"]
    user = {
        "no_panel_permission": lambda: make_staff("u1", "customers.view_customer"),
        "other_panel_permission": lambda: make_staff("u2", "admin_site.access_legacy", "customers.view_customer"),
        "inactive_with_permission": lambda: make_staff("u3", "admin_site.access_customers", active=False),
        "not_staff_with_permission": lambda: make_staff("u4", "admin_site.access_customers", staff=False),
    }[user_kind]()
    client.force_login(user)
    login = reverse("customers:login")
    for url in panel_urls("customers", customer):
        response = client.get(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert response["Location"].startswith(login), url
    # Writes are refused too, and nothing changes.
    response = client.post(admin_url("customers", Customer, "delete", customer.pk), {"post": "yes"})
    assert response.status_code in (302, 403)
    assert Customer.objects.using("customers").filter(pk=customer.pk).exists()


def test_panel_permission_admits_to_that_panel_only(client):
    customer = seed_customers("customers")["ann"]
    user = make_staff("clerk", "admin_site.access_customers", "customers.view_customer")
    client.force_login(user)
    assert client.get(reverse("customers:index")).status_code == 200
    assert client.get(admin_url("customers", Customer, "change", customer.pk)).status_code == 200
    # Model permissions still apply inside the panel.
    assert client.get(admin_url("customers", Customer, "add")).status_code == 403
    for other in ("users", "legacy", "archive"):
        response = client.get(reverse(f"{other}:index"))
        assert response.status_code == 302 and response["Location"].startswith(reverse(f"{other}:login"))


def test_proxy_permissions_are_their_own(client):
    seed_customers("customers")
    user = make_staff("vipdesk", "admin_site.access_customers", "customers.view_vipcustomer")
    client.force_login(user)
    response = client.get(admin_url("customers", VipCustomer, "changelist"))
    assert response.status_code == 200
    assert [c.email for c in response.context["cl"].result_list] == ["bob@example.com"]
    assert client.get(admin_url("customers", Customer, "changelist")).status_code == 403


def test_one_login_serves_every_panel_the_user_may_enter(superuser):
    client = Client()
    response = client.post(reverse("legacy:login"), {"username": "root", "password": "pw"})
    assert response.status_code == 302
    for panel in ALL_DATABASES:
        assert client.get(reverse(f"{panel}:index")).status_code == 200


def test_each_panel_has_its_own_login_page_naming_its_database():
    client = Client()
    for panel in ALL_DATABASES:
        page = client.get(reverse(f"{panel}:login")).content.decode()
        assert f'data-database="{panel}"' in page


def test_every_panel_page_shows_its_database_band(root_client):
    seed_customers("archive")
    for panel in ALL_DATABASES:
        page = root_client.get(reverse(f"{panel}:index")).content.decode()
        assert f'id="panel-band" role="note" data-database="{panel}"' in page
    page = root_client.get(admin_url("archive", Customer, "changelist")).content.decode()
    assert "Database <strong>archive</strong>" in page


def test_csrf_is_enforced_on_panel_posts(superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    customer = seed_customers("customers")["ann"]
    response = client.post(admin_url("customers", Customer, "delete", customer.pk), {"post": "yes"})
    assert response.status_code == 403
    assert Customer.objects.using("customers").filter(pk=customer.pk).exists()


def test_console_home_lists_the_panels_a_user_may_enter(client):
    assert client.get("/").status_code == 302
    user = make_staff("clerk", "admin_site.access_customers", "admin_site.access_legacy")
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    shown = [panel["site"].alias for panel in response.context["panels"]]
    assert shown == ["customers", "legacy"]
    for panel in response.context["panels"]:
        assert panel["status"]["reachable"] is True
        assert panel["status"]["unapplied"] == 0
    page = response.content.decode()
    assert 'data-alias="customers"' in page and 'data-alias="users"' not in page


def test_console_home_refuses_staff_without_any_panel(client):
    client.force_login(make_staff("nobody"))
    response = client.get("/")
    assert response.status_code == 403
    assert "may not enter any panel" in response.content.decode()


def test_console_home_reports_an_unreachable_database_and_still_serves(root_client, monkeypatch):
    from django.db import OperationalError, connections

    def refuse():
        raise OperationalError("(2003, \"Can't connect to MySQL server on 'db.internal'\")")

    monkeypatch.setattr(connections["legacy"], "ensure_connection", refuse)
    response = root_client.get("/")
    assert response.status_code == 200
    status = {panel["site"].alias: panel["status"] for panel in response.context["panels"]}
    assert status["legacy"]["reachable"] is False
    assert all(status[alias]["reachable"] for alias in status if alias != "legacy")
    assert "unreachable: (2003" in response.content.decode()


@pytest.mark.parametrize("login", ["users:login", "customers:login"])
@pytest.mark.parametrize("unsafe", ["https://evil.example/", "//evil.example/", "https://evil.example/customers/"])
def test_a_refused_next_lands_on_the_console_home(superuser, login, unsafe):
    client = Client()
    url = reverse(login) + "?" + urlencode({"next": unsafe})
    response = client.post(url, {"username": "root", "password": "pw", "next": unsafe})
    assert response.status_code == 302
    assert response["Location"] == reverse("console-home") == "/"
    assert client.get(response["Location"]).status_code == 200
