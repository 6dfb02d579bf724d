"""Second factor (django-otp, issue 15): a code after the password on panels that require it, enrolment, attacks."""

import base64
import datetime
import re
import time

import pyotp
import pytest
from django.contrib.auth.models import Permission, User
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from admin_site.sites import all_sites, build_sites
from tests.conftest import ALL_DATABASES

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


@pytest.fixture
def required(monkeypatch):
    """Every panel requires the second factor, as production settings say."""
    for site in all_sites().values():
        monkeypatch.setattr(site, "require_otp", True)


def make_user(username="clerk", superuser=True, panels=()):
    user = User.objects.db_manager("users").create_user(
        username, password="right-pw", is_staff=True, is_superuser=superuser
    )
    for alias in panels:
        user.user_permissions.add(Permission.objects.using("users").get(codename=f"access_{alias}"))
    return user


@pytest.fixture
def clerk():
    return make_user()


def add_authenticator(user):
    """A confirmed TOTP device for ``user`` and its base32 secret (what the QR code carries)."""
    device = TOTPDevice.objects.using("users").create(user=user, name="Phone", confirmed=True)
    return device, base64.b32encode(device.bin_key).decode()


def logged_in(client, user):
    client.force_login(user)
    return client


def submit_code(client, code, panel="users", next_url=None):
    data = {"code": code}
    if next_url is not None:
        data["next"] = next_url
    return client.post(reverse(f"{panel}:otp_verify"), data)


def now_code(secret, offset=0):
    return pyotp.TOTP(secret).at(time.time() + offset)


def test_a_user_with_an_authenticator_is_asked_for_a_code_before_any_panel_page(clerk, required):
    add_authenticator(clerk)
    client = logged_in(Client(), clerk)
    for url in ["/customers/", "/customers/customers/customer/", "/users/auth/user/", "/users/password_change/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("customers:otp_verify") if "customers" in url else "/users/otp/")
        assert "next=" in response["Location"]


def test_the_right_code_lets_the_user_into_every_panel_and_back_to_the_page_asked_for(clerk, required):
    _, secret = add_authenticator(clerk)
    client = logged_in(Client(), clerk)
    step = client.get("/customers/customers/customer/")
    page = client.get(step["Location"])
    assert page.status_code == 200 and 'name="code"' in page.content.decode()
    response = client.post(step["Location"], {"code": now_code(secret), "next": "/customers/customers/customer/"})
    assert response.status_code == 302 and response["Location"] == "/customers/customers/customer/"
    for url in ["/customers/customers/customer/", "/users/", "/legacy/", "/"]:
        assert client.get(url).status_code == 200, url


def test_the_code_page_shows_no_panel_data_and_needs_the_password_first(clerk, required):
    add_authenticator(clerk)
    anonymous = Client().get(reverse("users:otp_verify"))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("users:login"))
    page = logged_in(Client(), clerk).get(reverse("users:otp_verify")).content.decode()
    assert "Enter the 6-digit code" in page and "auth/user" not in page


def test_a_code_used_once_is_refused_the_second_time(clerk, required):
    _, secret = add_authenticator(clerk)
    code = now_code(secret)
    first, second = logged_in(Client(), clerk), logged_in(Client(), clerk)
    assert submit_code(first, code).status_code == 302
    replay = submit_code(second, code)
    assert replay.status_code == 200 and "That code is not valid" in replay.content.decode()
    assert second.get("/users/").status_code == 302


@pytest.mark.parametrize("offset", [-120, -90, 90, 120])
def test_a_code_outside_its_time_window_is_refused(clerk, required, offset):
    _, secret = add_authenticator(clerk)
    response = submit_code(logged_in(Client(), clerk), now_code(secret, offset))
    assert response.status_code == 200 and "That code is not valid" in response.content.decode()


def test_a_code_from_the_previous_step_is_still_accepted(clerk, required):
    """One step of tolerance (30 s) for a phone's clock or a slow typist; two steps are refused above."""
    _, secret = add_authenticator(clerk)
    assert submit_code(logged_in(Client(), clerk), now_code(secret, -30)).status_code == 302


@pytest.fixture
def clock(monkeypatch):
    """Move Django's clock (which django-otp's throttling reads) forward without sleeping."""
    real_now = timezone.now
    offset = [datetime.timedelta(0)]
    monkeypatch.setattr("django.utils.timezone.now", lambda: real_now() + offset[0])
    return offset


def test_wrong_codes_are_throttled_so_even_the_right_code_must_wait(clerk, required, clock):
    _, secret = add_authenticator(clerk)
    client = logged_in(Client(), clerk)
    for _ in range(3):
        submit_code(client, "000000")
        clock[0] += datetime.timedelta(seconds=10)
    submit_code(client, "000000")  # the fourth failure: 8 seconds to wait
    response = submit_code(client, now_code(secret))
    page = response.content.decode()
    assert response.status_code == 429 and "Too many wrong codes. Wait 8 seconds" in page
    assert client.get("/users/").status_code == 302
    clock[0] += datetime.timedelta(seconds=9)
    assert submit_code(client, now_code(secret)).status_code == 302
    assert TOTPDevice.objects.using("users").get().throttling_failure_count == 0


def test_a_backup_code_works_once_and_is_used_up(clerk, required):
    add_authenticator(clerk)
    backup = StaticDevice.objects.using("users").create(user=clerk, name="Backup codes")
    StaticToken.objects.using("users").create(device=backup, token="abcd2345")
    first = logged_in(Client(), clerk)
    assert submit_code(first, "ABCD-2345").status_code == 302
    assert first.get("/users/").status_code == 200
    again = submit_code(logged_in(Client(), clerk), "abcd2345")
    assert again.status_code == 200 and "That code is not valid" in again.content.decode()
    assert not StaticToken.objects.using("users").exists()


@pytest.mark.parametrize("code", ["", "x" * 33, "12345", "１２３４５６", "' OR 1=1 --", "0" * 6])
def test_malformed_codes_are_form_errors_not_server_errors(clerk, required, code):
    add_authenticator(clerk)
    response = submit_code(logged_in(Client(), clerk), code)
    assert response.status_code == 200 and 'class="errorlist' in response.content.decode()


def test_logging_out_never_asks_for_a_code(clerk, required):
    add_authenticator(clerk)
    client = logged_in(Client(), clerk)
    response = client.post(reverse("customers:logout"))
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_the_next_page_after_the_code_stays_on_this_host(clerk, required):
    _, secret = add_authenticator(clerk)
    response = submit_code(logged_in(Client(), clerk), now_code(secret), next_url="https://evil.example/")
    assert response.status_code == 302 and response["Location"] == reverse("users:index")


def test_a_panel_that_does_not_require_it_does_not_ask(clerk, monkeypatch):
    monkeypatch.setattr(all_sites()["customers"], "require_otp", True)
    add_authenticator(clerk)
    client = logged_in(Client(), clerk)
    assert client.get("/legacy/").status_code == 200
    assert client.get("/customers/").status_code == 302


def test_the_home_asks_for_the_code_only_when_a_panel_the_user_may_enter_requires_it(monkeypatch):
    monkeypatch.setattr(all_sites()["customers"], "require_otp", True)
    customers_clerk = make_user("c-clerk", superuser=False, panels=["customers"])
    legacy_clerk = make_user("l-clerk", superuser=False, panels=["legacy"])
    add_authenticator(customers_clerk)
    home = logged_in(Client(), customers_clerk).get("/")
    assert home.status_code == 302 and home["Location"].startswith(reverse("customers:otp_verify"))
    assert logged_in(Client(), legacy_clerk).get("/").status_code == 200


# -- enrolment ---------------------------------------------------------------------------------------------------


def enrolment_secret(page):
    match = re.search(r'<code id="otp-secret">([A-Z2-7 ]+)</code>', page)
    assert match, "no secret on the enrolment page"
    return match.group(1).replace(" ", "")


def test_a_user_without_a_device_is_led_to_enrol_with_a_qr_code_and_the_secret(clerk, required):
    client = logged_in(Client(), clerk)
    step = client.get("/users/")
    assert step.status_code == 302 and step["Location"].startswith(reverse("users:otp_enrol"))
    page = client.get(step["Location"]).content.decode()
    assert "<svg" in page and "otpauth://" not in page.split("<svg")[0]
    secret = enrolment_secret(page)
    device = TOTPDevice.objects.using("users").get(user=clerk)
    assert not device.confirmed and base64.b32encode(device.bin_key).decode() == secret
    # Reloading keeps the same secret (the phone may already have scanned it).
    assert enrolment_secret(client.get(step["Location"]).content.decode()) == secret


def test_confirming_enrolment_with_a_code_shows_backup_codes_once_and_lets_the_user_in(clerk, required):
    client = logged_in(Client(), clerk)
    secret = enrolment_secret(client.get(reverse("users:otp_enrol")).content.decode())
    response = client.post(reverse("users:otp_enrol"), {"code": now_code(secret), "next": "/customers/"})
    page = response.content.decode()
    assert response.status_code == 200 and "not shown again" in page
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page)
    assert len(codes) == 10
    assert sorted(codes) == sorted(StaticToken.objects.using("users").values_list("token", flat=True))
    assert TOTPDevice.objects.using("users").get(user=clerk).confirmed
    assert client.get("/customers/").status_code == 200
    # Enrolment is over: the page now leads to the code step, which this session has passed.
    assert client.get(reverse("users:otp_enrol"))["Location"].startswith(reverse("users:otp_verify"))
    other = logged_in(Client(), clerk)
    assert "not shown again" not in other.get(reverse("users:otp_enrol"), follow=True).content.decode()
    # A backup code lets a new session in.
    assert submit_code(other, codes[0]).status_code == 302


def test_a_wrong_code_at_enrolment_confirms_nothing(clerk, required):
    client = logged_in(Client(), clerk)
    client.get(reverse("users:otp_enrol"))
    response = client.post(reverse("users:otp_enrol"), {"code": "123456"})
    assert response.status_code == 200 and "That code is not valid" in response.content.decode()
    assert not TOTPDevice.objects.using("users").get(user=clerk).confirmed
    assert not StaticDevice.objects.using("users").exists()
    assert client.get("/users/").status_code == 302


def test_a_user_with_a_device_cannot_enrol_another(clerk, required):
    add_authenticator(clerk)
    response = logged_in(Client(), clerk).get(reverse("users:otp_enrol"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("users:otp_verify"))
    assert TOTPDevice.objects.using("users").count() == 1


def verified_root(required_client_user):
    client = logged_in(Client(), required_client_user)
    _, secret = add_authenticator(required_client_user)
    assert submit_code(client, now_code(secret)).status_code == 302
    return client


def test_a_superuser_removes_a_users_devices_and_the_user_enrols_again(clerk, required):
    other = make_user("other", superuser=False, panels=["users"])
    add_authenticator(other)
    root = verified_root(clerk)
    device = TOTPDevice.objects.using("users").get(user=other)
    url = reverse("users:otp_totp_totpdevice_delete", args=[device.pk])
    assert root.post(url, {"post": "yes"}).status_code == 302
    assert not TOTPDevice.objects.using("users").filter(user=other).exists()
    step = logged_in(Client(), other).get("/users/")
    assert step["Location"].startswith(reverse("users:otp_enrol"))
    # Nobody adds or changes a device for someone else.
    assert root.get(reverse("users:otp_totp_totpdevice_add")).status_code == 403
    assert root.get(reverse("users:otp_static_staticdevice_add")).status_code == 403


def test_a_device_secret_is_in_no_list_form_or_export(clerk, required):
    root = verified_root(clerk)
    device = TOTPDevice.objects.using("users").get(user=clerk)
    backup = StaticDevice.objects.using("users").create(user=clerk, name="Backup codes")
    StaticToken.objects.using("users").create(device=backup, token="zzzz7777")
    secrets = [device.key, base64.b32encode(device.bin_key).decode(), "zzzz7777"]
    pages = [
        reverse("users:otp_totp_totpdevice_changelist"),
        reverse("users:otp_totp_totpdevice_change", args=[device.pk]),
        reverse("users:otp_totp_totpdevice_delete", args=[device.pk]),
        reverse("users:otp_static_staticdevice_changelist"),
        reverse("users:otp_static_staticdevice_change", args=[backup.pk]),
        reverse("users:otp_static_staticdevice_delete", args=[backup.pk]),
        reverse("users:auth_user_delete", args=[clerk.pk]),
    ]
    for url in pages:
        response = root.get(url)
        assert response.status_code == 200, url
        assert not any(secret.lower() in response.content.decode().lower() for secret in secrets), url
    for model in ["otp_totp_totpdevice", "otp_static_staticdevice"]:
        assert root.get(reverse(f"users:{model}_changelist")).content.decode().count("Export") == 0
        assert root.get(
            f"/users/{model.replace('_totpdevice', '/totpdevice').replace('_staticdevice', '/staticdevice')}/export/"
        ).status_code in (403, 404)


def test_the_device_tables_are_on_the_users_database_and_no_other():
    for alias in ALL_DATABASES:
        tables = connections[alias].introspection.table_names()
        assert ("otp_totp_totpdevice" in tables) == (alias == "users"), alias
        assert ("otp_static_statictoken" in tables) == (alias == "users"), alias


def test_devices_are_on_the_users_panel_only(clerk, required):
    root = verified_root(clerk)
    for panel in ["customers", "legacy", "archive"]:
        assert root.get(f"/{panel}/otp_totp/totpdevice/").status_code == 404


def test_the_password_step_is_still_throttled_by_axes(clerk, required):
    add_authenticator(clerk)
    client = Client()
    for _ in range(5):
        client.post(reverse("customers:login"), {"username": "clerk", "password": "wrong"})
    response = client.post(reverse("customers:login"), {"username": "clerk", "password": "right-pw"})
    assert response.status_code == 429 and "_auth_user_id" not in client.session


def test_the_password_leads_to_the_code_step_and_then_to_the_page(clerk, required):
    _, secret = add_authenticator(clerk)
    client = Client()
    login = client.post(
        reverse("customers:login"), {"username": "clerk", "password": "right-pw", "next": "/customers/"}
    )
    assert login.status_code == 302 and login["Location"] == "/customers/"
    step = client.get(login["Location"])
    assert step["Location"].startswith(reverse("customers:otp_verify"))
    done = client.post(step["Location"], {"code": now_code(secret), "next": "/customers/"})
    assert done["Location"] == "/customers/" and client.get("/customers/").status_code == 200


def test_each_panel_reads_require_otp_from_its_configuration():
    sites = build_sites({"a": {"title": "A", "apps": [], "require_otp": True}, "b": {"title": "B", "apps": []}})
    assert sites["a"].require_otp is True and sites["b"].require_otp is False


def test_development_settings_do_not_require_it():
    assert not any(site.require_otp for site in all_sites().values())


PRODUCTION_PANELS = """
import json
from django.conf import settings
from admin_site.sites import all_sites
print(json.dumps({alias: site.require_otp for alias, site in all_sites().items()}))
"""


@pytest.fixture
def production_env(tmp_path):
    """What production settings need to start; the URLs lead nowhere (nothing connects)."""
    from django.core.management.utils import get_random_secret_key

    from admin_site.conf import env_var

    env = {"DJANGO_SECRET_KEY": get_random_secret_key(), "DJANGO_ALLOWED_HOSTS": "console.example.com"}
    env["CONSOLE_VAR_DIR"] = str(tmp_path)
    for alias in ("users", "customers", "legacy"):
        env[env_var(alias)] = f"mysql://127.0.0.1:9/console_{alias}?read_default_file={tmp_path}/none.cnf"
    return env


@pytest.mark.parametrize(("flag", "expected"), [(None, True), ("1", True), ("0", False)])
def test_production_requires_it_on_every_panel_unless_turned_off(production_env, flag, expected):
    import json

    from tests.test_production import run_python

    env = {**production_env, "DJANGO_SETTINGS_MODULE": "console.settings_production"}
    if flag is not None:
        env["CONSOLE_REQUIRE_OTP"] = flag
    result = run_python(["-c", "import django; django.setup()\n" + PRODUCTION_PANELS], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"users": expected, "customers": expected, "legacy": expected}


def test_a_malformed_require_otp_stops_production_startup(production_env):
    from tests.test_production import run_python

    env = {**production_env, "DJANGO_SETTINGS_MODULE": "console.settings_production", "CONSOLE_REQUIRE_OTP": "maybe"}
    result = run_python(["-c", "import django; django.setup()"], env)
    assert result.returncode != 0 and "CONSOLE_REQUIRE_OTP must be 1 or 0" in result.stderr


def test_an_operator_resets_a_users_devices_from_the_shell(clerk, required):
    import io

    from django.core.management import CommandError, call_command

    add_authenticator(clerk)
    StaticDevice.objects.using("users").create(user=clerk, name="Backup codes")
    out = io.StringIO()
    call_command("reset_second_factor", "clerk", stdout=out)
    assert "removed 1 authenticator" in out.getvalue()
    assert not TOTPDevice.objects.using("users").exists() and not StaticDevice.objects.using("users").exists()
    assert logged_in(Client(), clerk).get("/users/")["Location"].startswith(reverse("users:otp_enrol"))
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("reset_second_factor", "nobody")
