"""The connection budget check (``console.W012``/``W013``, ``manage.py check --database ALIAS``).

Every panel database and replica may hold one persistent connection per web thread, background worker and
management command of every app host; the check compares that with each MySQL server's real
``@@max_connections`` and never connects unless asked to with ``--database``.
"""

import io
import re
import socket

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections

from admin_site import express
from admin_site.checks import check_connection_budget
from tests.conftest import ALL_DATABASES

PANELS = list(django_settings.CONSOLE_DATABASES)
ON_MYSQL = connections.settings["users"]["ENGINE"] == "django.db.backends.mysql"
mariadb_only = pytest.mark.skipif(not ON_MYSQL, reason="needs CONSOLE_TEST_DATABASE_URL (MariaDB)")
#: The probe opens a connection of its own; the marker makes the test databases exist.
on_test_databases = pytest.mark.django_db(databases=ALL_DATABASES)


def figures(settings, processes, threads, hosts=1, workers=1):
    settings.CONSOLE_WSGI_PROCESSES = processes
    settings.CONSOLE_WSGI_THREADS = threads
    settings.CONSOLE_APP_HOSTS = hosts
    settings.CONSOLE_WORKERS = workers


def server_max_connections():
    with connections["users"].cursor() as cursor:
        cursor.execute("SELECT @@max_connections")
        return int(cursor.fetchone()[0])


def run_check(*databases):
    out = io.StringIO()
    call_command("check", databases=list(databases), stdout=out, stderr=out)
    return out.getvalue()


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(ON_MYSQL, reason="the SQLite case")
def test_on_sqlite_the_check_has_nothing_to_count(settings, django_db_blocker):
    figures(settings, processes=1000, threads=100, hosts=10)
    with django_db_blocker.unblock():
        assert check_connection_budget(databases=PANELS) == []


@mariadb_only
def test_plain_check_never_connects(settings, monkeypatch):
    figures(settings, processes=1000, threads=100, hosts=10)

    def refuse(*args, **kwargs):
        raise AssertionError("plain check connected to a database")

    monkeypatch.setattr("admin_site.checks.read_max_connections", refuse)
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "console.W01" not in out.getvalue()
    assert check_connection_budget() == []


@mariadb_only
@on_test_databases
def test_figures_over_the_servers_max_connections_are_a_warning_naming_them(
    settings, django_db_setup, django_db_blocker
):
    limit = server_max_connections()
    figures(settings, processes=limit, threads=2, hosts=2, workers=3)
    output = run_check("customers")
    server = f"{connections.settings['users']['HOST']}:{connections.settings['users']['PORT']}"
    needed = 2 * (limit * 2 + 3 + 1) * len(PANELS)
    assert "console.W012" in output
    assert f"The MySQL server {server} ({', '.join(PANELS)}) may have to hold {needed} connections" in output
    assert f"more than its max_connections of {limit}" in output
    assert f"2 app host(s) x ({limit} processes x 2 threads + 3 background worker(s) + 1 management command)" in output
    assert f"x {len(PANELS)} database(s) on it = {needed} connections" in output
    # One server, one warning, whichever of its databases were named.
    assert output.count("console.W012") == 1


@mariadb_only
@on_test_databases
def test_figures_within_the_limit_give_no_warning(settings):
    limit = server_max_connections()
    # The largest web pool that still fits: every alias on the one server at one host.
    threads = limit // len(PANELS) - 2
    figures(settings, processes=1, threads=threads, workers=1)
    assert check_connection_budget(databases=PANELS) == []
    figures(settings, processes=1, threads=threads + 1, workers=1)
    assert [m.id for m in check_connection_budget(databases=PANELS)] == ["console.W012"]


@mariadb_only
@on_test_databases
def test_the_defaults_are_the_apache_vhosts_processes_and_threads(settings):
    defines = express.vhost_defines()
    processes, threads = int(defines["CONSOLE_PROCESSES"]), int(defines["CONSOLE_THREADS"])
    settings.CONSOLE_APP_HOSTS = 1000  # only the host count is set: the rest are the defaults
    [warning] = check_connection_budget(databases=["users"])
    assert f"1000 app host(s) x ({processes} processes x {threads} threads + 1 background worker(s)" in warning.msg


def test_the_uwsgi_ini_runs_what_the_vhost_says():
    """The budget's defaults come from the vhost; the uWSGI alternative must run as many."""
    defines = express.vhost_defines()
    ini = (express.REPO / "deploy" / "uwsgi" / "data-console.ini").read_text(encoding="utf-8")
    assert re.search(rf"^processes = {defines['CONSOLE_PROCESSES']}$", ini, re.M)
    assert re.search(rf"^threads = {defines['CONSOLE_THREADS']}$", ini, re.M)


@on_test_databases
def test_an_unreachable_replica_server_is_a_warning_of_its_own(settings, monkeypatch):
    """A replica on a server that does not answer: W013 naming it, not a crash; its primary is not counted there."""
    port = closed_port()
    replica = {
        **connections.settings["users"],
        "ENGINE": "django.db.backends.mysql",
        "NAME": "console_customers",
        "USER": "console",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "OPTIONS": {},
    }
    monkeypatch.setitem(connections.settings, "customers__replica1", replica)
    settings.CONSOLE_REPLICAS = {"customers": ["customers__replica1"]}
    figures(settings, processes=1, threads=1)
    messages = check_connection_budget(databases=["customers"])
    [unreachable] = [m for m in messages if m.id == "console.W013"]
    assert unreachable.msg.startswith(f"Could not read max_connections from the MySQL server 127.0.0.1:{port}")
    assert "(customers__replica1)" in unreachable.msg
    assert [m.id for m in messages] == ["console.W013"]  # the primary's server (if MariaDB) is within its limit
