"""Staff sessions (issue 15): they end after an idle time, and a password change signs the user out elsewhere."""

import datetime

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import ALL_DATABASES

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


@pytest.fixture
def clerk():
    return User.objects.db_manager("users").create_user(
        "clerk", password="old-Pw-4711", is_staff=True, is_superuser=True
    )


@pytest.fixture
def clock(monkeypatch):
    """Move Django's clock (session expiry) forward without sleeping."""
    real_now = timezone.now
    offset = [datetime.timedelta(0)]
    monkeypatch.setattr("django.utils.timezone.now", lambda: real_now() + offset[0])
    return offset


def log_in(username="clerk", password="old-Pw-4711"):
    client = Client()
    response = client.post(reverse("users:login"), {"username": username, "password": password})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    return client


def sent_to_login(response):
    """A redirect to the login page of the panel that was asked for."""
    panel = response.wsgi_request.path.strip("/").split("/")[0]
    return response.status_code == 302 and response["Location"].startswith(reverse(f"{panel}:login"))


def test_sessions_end_after_thirty_idle_minutes_by_default():
    assert settings.CONSOLE_SESSION_IDLE_MINUTES == 30
    assert settings.SESSION_COOKIE_AGE == 30 * 60


def test_a_session_idle_just_under_the_limit_is_kept(clerk, clock):
    client = log_in()
    clock[0] = datetime.timedelta(minutes=29)
    assert client.get("/users/").status_code == 200


def test_pages_within_a_minute_of_the_last_save_write_no_session(clerk, clock):
    from tests.utils import capture_queries

    client = log_in()
    with capture_queries() as log:
        for _ in range(3):
            assert client.get("/users/").status_code == 200
    assert log.writes_on("users") == []
    clock[0] = datetime.timedelta(minutes=2)
    with capture_queries() as log:
        assert client.get("/users/").status_code == 200
    assert len(log.writes_on("users")) == 1 and "django_session" in log.writes_on("users")[0]


def test_a_session_idle_longer_than_the_limit_is_sent_to_login(clerk, clock):
    client = log_in()
    assert client.get("/users/").status_code == 200
    clock[0] = datetime.timedelta(minutes=31)
    assert sent_to_login(client.get("/users/"))
    assert sent_to_login(client.get("/customers/"))


def test_an_active_session_is_kept_past_the_limit(clerk, clock):
    client = log_in()
    for minutes in (20, 40, 60, 80):
        clock[0] = datetime.timedelta(minutes=minutes)
        assert client.get("/users/").status_code == 200, minutes


def test_the_idle_limit_is_a_setting(clerk, clock, settings):
    settings.SESSION_COOKIE_AGE = 5 * 60
    client = log_in()
    clock[0] = datetime.timedelta(minutes=4)
    assert client.get("/users/").status_code == 200
    clock[0] = datetime.timedelta(minutes=10)
    assert sent_to_login(client.get("/users/"))


def test_changing_ones_own_password_signs_out_the_other_sessions_and_keeps_this_one(clerk):
    changer, elsewhere = log_in(), log_in()
    page = changer.get(reverse("users:password_change"))
    assert page.status_code == 200
    response = changer.post(
        reverse("users:password_change"),
        {"old_password": "old-Pw-4711", "new_password1": "new-Pw-0815-x", "new_password2": "new-Pw-0815-x"},
    )
    assert response.status_code == 302
    assert changer.get("/users/").status_code == 200
    assert sent_to_login(elsewhere.get("/users/"))
    assert sent_to_login(elsewhere.get("/customers/"))


def test_a_superuser_setting_a_users_password_signs_that_user_out(clerk):
    other = User.objects.db_manager("users").create_user(
        "other", password="other-Pw-1", is_staff=True, is_superuser=True
    )
    root, victim = log_in(), log_in("other", "other-Pw-1")
    assert victim.get("/customers/").status_code == 200
    url = reverse("users:auth_user_password_change", args=[other.pk])
    response = root.post(
        url, {"password1": "reset-Pw-4242-y", "password2": "reset-Pw-4242-y", "usable_password": "true"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert sent_to_login(victim.get("/customers/"))
    assert root.get("/users/").status_code == 200
    assert log_in("other", "reset-Pw-4242-y").get("/users/").status_code == 200
