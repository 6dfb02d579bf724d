"""Login throttling (django-axes, issue 15): every panel's login and the console's, one counter on ``users``."""

import datetime
import re

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import ALL_DATABASES

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

MESSAGE = "Too many failed login attempts."


@pytest.fixture
def clerk():
    return User.objects.db_manager("users").create_user("clerk", password="right-pw", is_staff=True, is_superuser=True)


def attempt(client, username, password, panel="users", **extra):
    return client.post(reverse(f"{panel}:login"), {"username": username, "password": password}, **extra)


def logged_in(client):
    return "_auth_user_id" in client.session


def fail(client, times, username="clerk", panel="users", **extra):
    for _ in range(times):
        response = attempt(client, username, "wrong", panel, **extra)
        assert response.status_code in (200, 429) and not logged_in(client)
    return response


def test_defaults_are_five_failures_within_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == datetime.timedelta(minutes=15)
    assert settings.AXES_USE_ATTEMPT_EXPIRATION
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesBackend"


def test_four_failures_do_not_lock_out(clerk):
    client = Client()
    fail(client, 4)
    response = attempt(client, "clerk", "right-pw")
    assert response.status_code == 302 and logged_in(client)


def test_five_failures_then_the_right_password_is_refused_with_a_clear_message(clerk):
    client = Client()
    fifth = fail(client, 5)
    assert fifth.status_code == 429 and MESSAGE in fifth.content.decode()
    response = attempt(client, "clerk", "right-pw")
    page = response.content.decode()
    assert response.status_code == 429 and not logged_in(client)
    assert MESSAGE in page and "15 minutes" in page
    # The panel's own login page, with its form, not a bare error.
    assert 'name="password"' in page and "Data Console" in page


def normalised(response, username):
    page = response.content.decode().replace(username, "USERNAME")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)


def test_an_unknown_username_gets_the_same_page(clerk):
    known, unknown = Client(), Client()
    fail(known, 5, "clerk")
    fail(unknown, 5, "nobody")
    known_page = attempt(known, "clerk", "right-pw")
    unknown_page = attempt(unknown, "nobody", "right-pw")
    assert known_page.status_code == unknown_page.status_code == 429
    assert normalised(known_page, "clerk") == normalised(unknown_page, "nobody")


def test_varied_case_is_the_same_user(clerk):
    client = Client()
    for name in ["Clerk", "CLERK", "clerk", "cLeRk", " clerk"]:
        attempt(client, name, "wrong")
    response = attempt(client, "clerk", "right-pw")
    assert response.status_code == 429 and not logged_in(client)
    assert AccessAttempt.objects.using("users").get().username == "clerk"


def test_failures_on_another_panel_count_toward_every_panel_and_the_home(clerk):
    client = Client()
    fail(client, 3, panel="customers")
    fail(client, 1, panel="legacy")
    fail(client, 1, panel="archive")
    for panel in ["users", "customers"]:
        response = attempt(client, "clerk", "right-pw", panel)
        assert response.status_code == 429 and MESSAGE in response.content.decode()
    # The console home's login is the console's own, and shares the counter.
    home = client.get("/")
    assert home.status_code == 302 and home["Location"].startswith(reverse("console-login"))
    response = client.post(home["Location"], {"username": "clerk", "password": "right-pw"})
    assert response.status_code == 429 and not logged_in(client)
    assert MESSAGE in response.content.decode() and 'id="panel-band"' not in response.content.decode()


def test_x_forwarded_for_does_not_reset_the_counter(clerk):
    client = Client()
    for n in range(5):
        attempt(client, "clerk", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}", HTTP_X_REAL_IP=f"198.51.100.{n}")
    response = attempt(client, "clerk", "right-pw", HTTP_X_FORWARDED_FOR="192.0.2.77")
    assert response.status_code == 429 and not logged_in(client)
    # One counter, for the connection's own address; the refused right password counted too.
    row = AccessAttempt.objects.using("users").get()
    assert (row.ip_address, row.failures_since_start) == ("127.0.0.1", 6)


def test_another_address_is_counted_separately(clerk):
    fail(Client(), 5)
    other = Client(REMOTE_ADDR="192.0.2.10")
    assert attempt(other, "clerk", "right-pw").status_code == 302 and logged_in(other)


@pytest.fixture
def clock(monkeypatch):
    """Move axes' clock (and Django's) forward without sleeping."""
    real_now = timezone.now
    offset = [datetime.timedelta(0)]

    def now():
        return real_now() + offset[0]

    monkeypatch.setattr("django.utils.timezone.now", now)
    monkeypatch.setattr("axes.attempts.now", now)
    monkeypatch.setattr("axes.handlers.proxy.now", now)
    return offset


def test_after_the_cool_off_the_right_password_works(clerk, clock):
    client = Client()
    fail(client, 5)
    clock[0] = datetime.timedelta(minutes=14)
    assert attempt(client, "clerk", "right-pw").status_code == 429
    # A refused attempt during the lockout restarts the cool-off (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT).
    clock[0] = datetime.timedelta(minutes=14 + 16)
    response = attempt(client, "clerk", "right-pw")
    assert response.status_code == 302 and logged_in(client)


def test_the_limits_are_settings(clerk, settings):
    settings.AXES_FAILURE_LIMIT = 2
    client = Client()
    fail(client, 2)
    assert attempt(client, "clerk", "right-pw").status_code == 429


def test_clearing_the_lockout_in_the_users_panel_lets_the_user_in(clerk, root_client):
    client = Client()
    fail(client, 5)
    changelist = root_client.get(reverse("users:axes_accessattempt_changelist"))
    assert changelist.status_code == 200 and "clerk" in changelist.content.decode()
    row = AccessAttempt.objects.using("users").get()
    response = root_client.post(
        reverse("users:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.using("users").exists()
    response = attempt(client, "clerk", "right-pw")
    assert response.status_code == 302 and logged_in(client)


def test_lockouts_are_not_on_other_panels(root_client):
    for panel in ["customers", "legacy", "archive"]:
        assert root_client.get(f"/{panel}/axes/accessattempt/").status_code == 404


def test_the_attempts_are_rows_in_the_users_database_and_no_other(clerk):
    fail(Client(), 2, panel="customers")
    assert AccessAttempt.objects.using("users").filter(username="clerk", failures_since_start=2).exists()
    for alias in ALL_DATABASES:
        tables = connections[alias].introspection.table_names()
        assert ("axes_accessattempt" in tables) == (alias == "users"), alias


#: Headers a client may send to claim another address; none is trusted without CONSOLE_TRUSTED_PROXIES.
FORGED_ADDRESS_HEADERS = [
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
    "HTTP_X_CLIENT_IP",
    "HTTP_TRUE_CLIENT_IP",
    "HTTP_CF_CONNECTING_IP",
    "HTTP_X_CLUSTER_CLIENT_IP",
]


def test_no_forwarded_address_header_changes_the_address_counted(clerk):
    client = Client()
    for n in range(5):
        forged = {header: f"203.0.113.{n * 10 + i}" for i, header in enumerate(FORGED_ADDRESS_HEADERS)}
        forged["HTTP_FORWARDED"] = f"for=198.51.100.{n}"
        attempt(client, "clerk", "wrong", **forged)
    for header in FORGED_ADDRESS_HEADERS:
        response = attempt(client, "clerk", "right-pw", **{header: "192.0.2.99"})
        assert response.status_code == 429 and not logged_in(client), header
    assert list(AccessAttempt.objects.using("users").values_list("ip_address", flat=True)) == ["127.0.0.1"]


def test_case_panels_and_forged_headers_together_share_one_lockout(clerk):
    client = Client()
    tries = [("Clerk", "customers"), ("CLERK", "legacy"), ("clerk ", "archive"), ("cLeRk", "users"), ("clerK", "users")]
    for n, (name, panel) in enumerate(tries):
        attempt(client, name, "wrong", panel, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    home = client.get("/")
    response = client.post(home["Location"], {"username": "CLERK", "password": "right-pw"})
    assert response.status_code == 429 and not logged_in(client)


def test_the_default_trusts_no_proxy():
    assert settings.CONSOLE_TRUSTED_PROXIES == 0
    assert settings.AXES_CLIENT_IP_CALLABLE == "admin_site.throttling.client_address"


def behind_proxy(client_address, forged=""):
    """A request as the one trusted proxy (10.0.0.1) forwards it: the client's own header, then its address."""
    chain = f"{forged}, {client_address}" if forged else client_address
    return {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": chain}


def test_behind_a_trusted_proxy_the_client_address_is_the_one_the_proxy_appended(clerk, settings):
    settings.CONSOLE_TRUSTED_PROXIES = 1
    client = Client()
    for n in range(5):
        # The client forges entries of its own to the left; only the proxy's entry counts.
        attempt(client, "clerk", "wrong", **behind_proxy("203.0.113.7", forged=f"192.0.2.{n}"))
    locked = attempt(client, "clerk", "right-pw", **behind_proxy("203.0.113.7", forged="192.0.2.200"))
    assert locked.status_code == 429 and not logged_in(client)
    assert AccessAttempt.objects.using("users").get().ip_address == "203.0.113.7"
    # Another client behind the same proxy is not locked out.
    other = Client()
    assert attempt(other, "clerk", "right-pw", **behind_proxy("198.51.100.8")).status_code == 302


@pytest.mark.parametrize("header", ["", "not-an-address", "203.0.113.7, "])
def test_behind_a_trusted_proxy_a_missing_or_malformed_header_counts_the_connection(clerk, settings, header):
    settings.CONSOLE_TRUSTED_PROXIES = 1
    client = Client()
    fail(client, 2, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=header)
    assert AccessAttempt.objects.using("users").get().ip_address == "10.0.0.1"


def test_with_two_trusted_proxies_the_client_is_the_second_entry_from_the_right(clerk, settings):
    settings.CONSOLE_TRUSTED_PROXIES = 2
    fail(Client(), 1, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9, 10.0.0.1")
    assert AccessAttempt.objects.using("users").get().ip_address == "203.0.113.9"
