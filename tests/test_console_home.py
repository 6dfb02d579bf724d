"""The console home (issue 17): each panel's database, tables, last changes and transfers, a chart; the console
login; and navigation between panels (switcher, breadcrumbs) on every panel page."""

import datetime
import re
from html import unescape

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from admin_site import history, outages, table_sizes
from admin_site.models import TransferRecord
from admin_site.sites import all_sites
from console.customers.models import Customer
from tests.conftest import ALL_DATABASES, seed_customers
from tests.test_outages import served_by, unreachable_settings
from tests.utils import admin_url, capture_queries

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


@pytest.fixture(autouse=True)
def fresh_state():
    """Table sizes are cached per database and outages remembered per process: each test starts without them."""
    cache.clear()
    outages.board.clear()
    yield
    cache.clear()
    outages.board.clear()


def make_staff(username, *perms):
    user = User.objects.db_manager("users").create_user(username, password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.using("users").get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.db_manager("users").get(pk=user.pk)


def customers_clerk():
    """May enter the customers panel only, and view its customers."""
    return make_staff("clerk", "admin_site.access_customers", "customers.view_customer")


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def card(page, alias):
    """The HTML of one panel's card on the home."""
    match = re.search(rf'<section class="panel-card" data-panel="{alias}".*?</section>', page, re.S)
    return match.group(0) if match else None


def log_change(alias, user, obj, when=None, flag=CHANGE):
    entry = history.log_rows(alias, user.pk, [obj], flag, "Changed name.", [[]], "form")[0]
    if when is not None:
        LogEntry.objects.filter(pk=entry.pk).update(action_time=when)
    return entry


def record_import(alias, when, model="customers.Customer", username="root"):
    return TransferRecord.objects.create(
        kind="import",
        started_at=when,
        duration=1,
        username=username,
        via="admin",
        database=alias,
        model=model,
        file_name=f"{alias}-{when:%Y%m%d%H%M}.csv",
        file_format="csv",
        rows_total=3,
        outcome="success",
    )


def day_groups(svg):
    """``{date: {"changes": n, "imports": n}}`` read from the chart's per-day groups."""
    days = {}
    for attrs in re.findall(r'<g class="day" ([^>]*)>', svg):
        values = dict(re.findall(r'data-(\w+)="([^"]*)"', attrs))
        day = datetime.date.fromisoformat(values.pop("date"))
        days[day] = {key: int(value) for key, value in values.items()}
    return days


# -- who sees what --------------------------------------------------------------------------------------------


def test_a_user_who_may_enter_one_panel_sees_that_panel_and_nothing_of_the_others(superuser):
    clerk = customers_clerk()
    ours = seed_customers("customers")
    theirs = seed_customers("archive", suffix="-archived")
    log_change("customers", superuser, ours["ann"])
    log_change("archive", superuser, theirs["bob"])
    record_import("archive", timezone.now())

    with capture_queries() as queries:
        response = logged_in(clerk).get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert [panel["site"].alias for panel in response.context["panels"]] == ["customers"]
    assert card(page, "customers") and not any(card(page, alias) for alias in ["users", "archive", "legacy"])
    assert "Ann Archer" in card(page, "customers")
    assert "-archived" not in page and "archive-" not in page
    # Every query the home sent for this user went to the customers database or the console's own tables.
    assert queries.on("archive") == [] and queries.on("legacy") == []
    assert queries.leaks_from("customers") == []
    # The clerk may not view transfer records: no transfers section, no imports in the chart.
    assert "Last transfers" not in page and 'data-imports="' not in page


def test_a_superuser_sees_every_panel_with_its_status_and_latency(root_client):
    response = root_client.get("/")
    page = response.content.decode()
    assert [panel["site"].alias for panel in response.context["panels"]] == list(all_sites())
    for panel in response.context["panels"]:
        alias = panel["site"].alias
        assert panel["status"]["reachable"] and panel["status"]["unapplied"] == 0
        assert panel["status"]["latency_ms"] > 0
        assert card(page, alias) is not None, alias
        assert f'<a href="{reverse(f"{alias}:index")}">{panel["site"].title}</a>' in card(page, alias)
    row = page.split('data-alias="customers">', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'<td class="latency"><span title="one SELECT 1">\d+\.\d\d ms</span></td>', row)


def test_each_query_about_a_panel_goes_to_that_panels_database(root_client):
    seed_customers("customers")
    with capture_queries() as queries:
        root_client.get("/")
    customers_sql = " ".join(queries.on("customers")).lower()
    # SQLite counts the table itself; MySQL reads the estimates of the connection's own schema (DATABASE()).
    assert "customers_customer" in customers_sql or "table_schema = database()" in customers_sql
    for alias in ["legacy", "archive"]:
        assert queries.on(alias), alias  # probed and measured
    # The legacy database never hears of customers' tables, nor customers of legacy's.
    assert "customers_customer" not in " ".join(queries.on("legacy")).lower()
    assert "custmast" not in customers_sql


# -- table sizes ----------------------------------------------------------------------------------------------


def sizes_on_page(page, alias):
    return {
        table: (int(rows), how)
        for table, rows, how in re.findall(
            r'<tr class="table-size" data-table="([^"]+)" data-rows="(\d+)" data-how="([^"]+)">', card(page, alias)
        )
    }


def test_the_biggest_tables_show_their_rows_and_how_they_were_counted(root_client, monkeypatch):
    seed_customers("customers")
    for n in range(4):
        Customer(name=f"Extra {n}", email=f"extra{n}@example.com", country="DE").save(using="customers")
    customers = Customer.objects.using("customers").count()
    vendor = connections["customers"].vendor

    if vendor == "mysql":
        with connections["customers"].cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = 'customers_customer'"
            )
            estimate = cursor.fetchone()[0]
        assert estimate == customers  # InnoDB's estimate, exact for a table this small
        shown = sizes_on_page(root_client.get("/").content.decode(), "customers")
        assert shown["customers_customer"] == (estimate, "estimate")
        return

    shown = sizes_on_page(root_client.get("/").content.decode(), "customers")
    assert shown["customers_customer"] == (customers, "counted")
    assert list(shown)[0] == "customers_customer"  # the biggest first
    page = root_client.get("/").content.decode()
    assert "customers_customer" in card(page, "customers") and "counted</td>" in card(page, "customers")

    # A table beyond the bound is "more than" the bound, never counted in full.
    cache.clear()
    monkeypatch.setattr(table_sizes, "COUNT_LIMIT", 3)
    with capture_queries(["customers"]) as queries:
        page = root_client.get("/").content.decode()
    assert sizes_on_page(page, "customers")["customers_customer"] == (3, "more than")
    assert "more than 3 rows" in card(page, "customers")
    counts = [sql for sql in queries.on("customers") if "COUNT(" in sql.upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts

    # After ANALYZE, SQLite's own statistics answer.
    cache.clear()
    with connections["customers"].cursor() as cursor:
        cursor.execute("ANALYZE")
    page = root_client.get("/").content.decode()
    assert sizes_on_page(page, "customers")["customers_customer"] == (customers, "sqlite_stat1")
    assert "from sqlite_stat1 (ANALYZE)" in card(page, "customers")


def test_table_sizes_are_cached_briefly(root_client):
    seed_customers("customers")
    first = sizes_on_page(root_client.get("/").content.decode(), "customers")["customers_customer"]
    Customer(name="Late", email="late@example.com", country="DE").save(using="customers")
    with capture_queries(["customers"]) as queries:
        again = sizes_on_page(root_client.get("/").content.decode(), "customers")["customers_customer"]
    assert again == first
    assert not [sql for sql in queries.on("customers") if "customers_customer" in sql.lower()]
    cache.delete(table_sizes.cache_key("customers"))
    if connections["customers"].vendor != "mysql":
        assert (
            sizes_on_page(root_client.get("/").content.decode(), "customers")["customers_customer"][0] == first[0] + 1
        )


def test_a_clerk_sees_only_the_tables_of_models_they_may_view(superuser):
    seed_customers("customers")
    page = logged_in(customers_clerk()).get("/").content.decode()
    assert set(sizes_on_page(page, "customers")) == {"customers_customer"}


# -- last changes and transfers, with links ---------------------------------------------------------------------


def test_last_changes_and_transfers_link_to_their_pages(root_client, superuser):
    data = seed_customers("customers")
    log_change("customers", superuser, data["ann"], flag=ADDITION)
    log_change("customers", superuser, data["bob"])
    record = record_import("customers", timezone.now())

    page = root_client.get("/").content.decode()
    ours = card(page, "customers")
    ann = admin_url("customers", Customer, "change", data["ann"].pk)
    assert f'<a href="{ann}">Added customer “{escape(data["ann"])}”</a>' in ours
    transfer = reverse("users:admin_site_transferrecord_change", args=[record.pk])
    assert f'<a href="{transfer}">Import of customers.Customer, {record.file_name}</a>' in ours
    changes = reverse("customers:changes")
    assert f'<a href="{changes}">Every change on this panel</a>' in ours
    for url in [ann, transfer, changes]:
        assert root_client.get(url).status_code == 200, url
    # Newest first.
    assert ours.index("Bob Baker") < ours.index("Ann Archer")


def test_a_summary_entry_links_to_the_panels_changes_for_its_model(root_client, superuser):
    history.log_summary("customers", superuser.pk, Customer, "Import of 3 customers", "Imported.", "import")
    page = card(root_client.get("/").content.decode(), "customers")
    url = reverse("customers:changes") + "?model=customers.customer"
    assert f'<a href="{url}">Changed customer “Import of 3 customers”</a>' in page
    assert root_client.get(url).status_code == 200


def test_no_recorded_value_and_no_secret_is_shown(root_client, superuser):
    dora = User.objects.db_manager("users").create_user("dora", password="old-pw", is_staff=True)
    entry = history.log_rows(
        "users",
        superuser.pk,
        [dora],
        CHANGE,
        "Changed password.",
        [
            [
                {"field": "email", "label": "Email", "before": "dora-before@example.com", "after": "d@example.com"},
                history.secret_item(User, "password"),
            ]
        ],
        "form",
    )[0]
    assert entry.panel.changes
    page = root_client.get("/").content.decode()
    assert "Changed user “dora”" in card(page, "users")
    assert dora.password not in page and "dora-before@example.com" not in page


# -- the chart ------------------------------------------------------------------------------------------------


def test_the_chart_counts_changes_and_imports_per_day_as_the_history_has_them(root_client, superuser):
    data = seed_customers("customers")
    now = timezone.now()
    when = {
        "today": now,
        "three days ago": now - datetime.timedelta(days=3),
        "29 days ago": now - datetime.timedelta(days=29),
        "31 days ago": now - datetime.timedelta(days=31),
    }
    for label, times in [("today", 3), ("three days ago", 2), ("29 days ago", 1), ("31 days ago", 4)]:
        for _ in range(times):
            log_change("customers", superuser, data["ann"], when[label])
    record_import("customers", when["three days ago"])
    record_import("customers", when["three days ago"] - datetime.timedelta(minutes=5))
    record_import("customers", when["31 days ago"])
    record_import("archive", when["today"])  # another panel's
    log_change("archive", superuser, seed_customers("archive", "-a")["bob"], when["today"])

    page = root_client.get("/").content.decode()
    svg = re.search(r'<svg class="daily-chart" id="chart-customers".*?</svg>', page, re.S).group(0)
    days = day_groups(svg)
    today = timezone.localdate()
    assert len(days) == 30 and min(days) == today - datetime.timedelta(days=29) and max(days) == today

    # What the history holds for the customers panel, day by day, read row by row.
    expected = {day: {"changes": 0, "imports": 0} for day in days}
    for entry in LogEntry.objects.filter(panel__database="customers"):
        day = timezone.localtime(entry.action_time).date()
        if day in expected:
            expected[day]["changes"] += 1
    for record in TransferRecord.objects.filter(database="customers", kind="import"):
        day = timezone.localtime(record.started_at).date()
        if day in expected:
            expected[day]["imports"] += 1
    assert days == expected
    assert days[today] == {"changes": 3, "imports": 0}
    assert days[today - datetime.timedelta(days=3)] == {"changes": 2, "imports": 2}

    title = unescape(re.search(r'<title id="chart-customers-title">(.*?)</title>', svg).group(1))
    assert title.endswith(": 6 changes, 2 imports.")
    three = today - datetime.timedelta(days=3)
    assert f"<title>{three.day} {three:%b %Y}: 2 changes, 2 imports</title>" in svg
    assert 'role="img"' in svg and 'aria-labelledby="chart-customers-title chart-customers-desc"' in svg
    assert "<script" not in page.split('id="panel-cards"', 1)[1]


# -- a database that is down ---------------------------------------------------------------------------------


def test_a_database_that_is_down_leaves_the_home_quick_and_whole(root_client, superuser, tmp_path):
    data = seed_customers("customers")
    log_change("customers", superuser, data["ann"])
    with served_by("archive", unreachable_settings("archive", tmp_path)):
        response = root_client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-alias="archive" data-down="true"' in page
    down = card(page, "archive")
    assert "Not read: the database is unreachable." in down and "table-size" not in down
    up = card(page, "customers")
    assert "table-size" in up and "Ann Archer" in up


# -- the console login ------------------------------------------------------------------------------------------


def test_the_console_login_has_no_panel_band_and_returns_to_the_home(superuser):
    client = Client()
    redirect = client.get("/")
    assert redirect.status_code == 302 and redirect["Location"] == reverse("console-login") + "?next=/"
    page = client.get(redirect["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="login-form"' in html and 'id="panel-band"' not in html and "User data" not in html
    response = client.post(redirect["Location"], {"username": "root", "password": "pw", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("unsafe", ["https://evil.example/", "//evil.example/customers/"])
def test_the_console_login_never_sends_anyone_to_another_host(superuser, unsafe):
    client = Client()
    response = client.post(reverse("console-login"), {"username": "root", "password": "pw", "next": unsafe})
    assert response.status_code == 302 and response["Location"] == reverse("console-home")


def test_the_console_login_refuses_a_wrong_password_and_a_non_staff_account():
    User.objects.db_manager("users").create_user("plain", password="pw")
    client = Client()
    for username, password in [("plain", "pw"), ("nobody", "pw")]:
        response = client.post(reverse("console-login"), {"username": username, "password": password})
        assert response.status_code == 200 and "errornote" in response.content.decode()
        assert "_auth_user_id" not in client.session


def test_after_the_console_login_the_home_asks_for_the_second_factor(monkeypatch, superuser):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    monkeypatch.setattr(all_sites()["customers"], "require_otp", True)
    TOTPDevice.objects.using("users").create(user=superuser, name="Phone", confirmed=True)
    client = Client()
    response = client.post(reverse("console-login"), {"username": "root", "password": "pw", "next": "/"})
    assert response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 302 and home["Location"].startswith(reverse("customers:otp_verify"))


# -- navigation -------------------------------------------------------------------------------------------------


def breadcrumbs(page):
    html = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S).group(1)
    return html, " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())


def switcher(page):
    nav = re.search(r'<nav id="panel-switcher" aria-label="Panels">(.*?)</nav>', page, re.S).group(1)
    return re.findall(
        r'<a href="([^"]+)" class="panel-link" data-panel="(\w+)" style="--switch-colour: ([^"]+)"'
        r'( aria-current="page")?>([^<]+)</a>',
        nav,
    ), nav


@pytest.mark.parametrize("view", ["changelist", "change"])
def test_panel_pages_link_home_switch_panels_and_say_where_they_are(view):
    clerk = make_staff("clerk", "admin_site.access_customers", "admin_site.access_legacy", "customers.view_customer")
    ann = seed_customers("customers")["ann"]
    url = admin_url("customers", Customer, view, *([ann.pk] if view == "change" else []))
    page = logged_in(clerk).get(url).content.decode()

    links, nav = switcher(page)
    assert [(href, alias, colour, bool(current), title) for href, alias, colour, current, title in links] == [
        ("/customers/", "customers", "#047857", True, "Customer data"),
        ("/legacy/", "legacy", "#b45309", False, "Legacy system"),
    ]
    assert f'<a href="{reverse("console-home")}" class="console-link">Console home</a>' in nav
    assert "View site" not in page

    html, text = breadcrumbs(page)
    expected = "Console › Customer data › Customers" + (f" › {ann}" if view == "change" else "")
    assert text == expected
    assert '<a href="/" class="console-crumb">Console</a>' in html
    assert '<a href="/customers/" class="panel-crumb">Customer data</a>' in html
    assert "Home" not in text


def test_other_panel_pages_start_their_breadcrumbs_at_the_console_too(root_client):
    ann = seed_customers("customers")["ann"]
    for url, rest in [
        (reverse("customers:index"), ""),
        (reverse("customers:changes"), " › Changes"),
        (reverse("customers:app_list", args=["customers"]), " › Customers"),
        (admin_url("customers", Customer, "import"), " › Customers › Import"),
        (admin_url("customers", Customer, "history", ann.pk), f" › Customers › {ann} › History"),
        (admin_url("customers", Customer, "delete", ann.pk), f" › Customers › {ann} › Delete"),
        (reverse("users:auth_user_changelist"), " › Users"),
    ]:
        page = root_client.get(url).content.decode()
        panel = url.split("/")[1]
        title = all_sites()[panel].title
        assert breadcrumbs(page)[1] == f"Console › {title}{rest}", url


def test_a_transfer_that_did_not_succeed_says_what_happened_for_its_kind(root_client):
    now = timezone.now()
    cancelled = record_import("customers", now)
    TransferRecord.objects.filter(pk=cancelled.pk).update(outcome="failed", message="Cancelled by root.\nRolled back.")
    cut = record_import("customers", now - datetime.timedelta(minutes=1))
    TransferRecord.objects.filter(pk=cut.pk).update(kind="export", outcome="failed", message="")
    ours = card(root_client.get("/").content.decode(), "customers")
    assert "Failed, nothing written: Cancelled by root." in ours and "Rolled back" not in ours
    assert "Stopped short," in ours
    assert "an import wrote nothing; an export stopped short" not in ours
