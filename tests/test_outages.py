"""A database that stops answering: its panel says so (503), the others keep working, the log says it once.

The ``archive`` panel's database is the one that goes down: each test serves
the alias through a connection of its own (a closed port, a file that cannot
be opened, a socket that never answers, or a second MariaDB server that the
test stops and starts) for the block, then gives the alias its test
connection back.
"""

import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pymysql
import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.db.utils import DatabaseErrorWrapper, load_backend
from django.urls import reverse

from admin_site import outages
from admin_site.conf import database_settings
from console.customers.models import Customer
from tests.utils import admin_url

DOWN = "archive"
UP = ["users", "customers", "legacy"]

pytestmark = pytest.mark.django_db(databases=[*UP, DOWN])


@pytest.fixture(autouse=True)
def fresh_board():
    """Each test starts with no database known to be down."""
    outages.board.clear()
    yield
    outages.board.clear()


@contextmanager
def served_by(alias, settings_dict):
    """Serve ``alias`` through a new connection made from ``settings_dict`` for the block."""
    saved = connections[alias]
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    connections[alias] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        connections[alias] = saved


def settings_of(alias, **changes):
    """A copy of ``alias``'s (test) connection settings with ``changes``."""
    config = {**connections.settings[alias], **changes}
    config["OPTIONS"] = dict(changes.get("OPTIONS", connections.settings[alias]["OPTIONS"]))
    return config


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_settings(alias, tmp_path):
    """``alias``'s settings pointed at a database that is not there: a closed port, an SQLite file in no directory."""
    if connections.settings[alias]["ENGINE"] == "django.db.backends.mysql":
        return settings_of(alias, HOST="127.0.0.1", PORT=closed_port())
    return settings_of(alias, NAME=str(tmp_path / "no-such-directory" / f"{alias}.sqlite3"))


def end_request(alias):
    """What a server does to ``alias``'s connection between requests (the test client skips it)."""
    connections[alias].close_if_unusable_or_obsolete()


def panel_page(alias):
    return admin_url(alias, Customer, "changelist")


def outage_records(caplog):
    return [record for record in caplog.records if record.name == "admin_site.outages"]


def assert_unavailable(response, alias, title):
    assert response.status_code == 503
    assert response["Retry-After"] == str(outages.DatabaseOutageMiddleware.retry_after)
    page = response.content.decode()
    assert f'data-database="{alias}"' in page
    assert f"<code>{alias}</code>" in page and title in page
    assert "try again" in page


def assert_others_answer(client):
    for alias in UP:
        assert client.get(reverse(f"{alias}:index")).status_code == 200, alias
    assert client.get(panel_page("customers")).status_code == 200


# --- which errors are an outage ---------------------------------------------------------------


def through_django(driver_module, error):
    """``error`` as Django raises it: wrapped by ``DatabaseErrorWrapper``, the driver's error as its cause."""
    try:
        with DatabaseErrorWrapper(SimpleNamespace(Database=driver_module)):
            raise error
    except Exception as wrapped:
        assert type(wrapped).__module__ == "django.db.utils" and wrapped.__cause__ is error
        return wrapped


# The driver's classes as ``pymysql`` exports them: once Django's MySQL backend has imported
# ``MySQLdb.*`` submodules, ``pymysql.err`` may be a second copy whose classes PyMySQL never raises.
OUTAGES = [
    pymysql.OperationalError(2002, "Can't connect to local MySQL server through socket '/run/mysqld/mysqld.sock'"),
    pymysql.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)"),
    pymysql.OperationalError(2006, "MySQL server has gone away (BrokenPipeError(32, 'Broken pipe'))"),
    pymysql.OperationalError(2013, "Lost connection to MySQL server during query"),
    pymysql.InterfaceError(0, ""),
    sqlite3.OperationalError("unable to open database file"),
]
NOT_OUTAGES = [
    pymysql.IntegrityError(1062, "Duplicate entry 'ann@example.com' for key 'email'"),
    pymysql.ProgrammingError(1064, "You have an error in your SQL syntax"),
    pymysql.OperationalError(1969, "Query execution was interrupted (max_statement_time exceeded)"),
    pymysql.OperationalError(1205, "Lock wait timeout exceeded; try restarting transaction"),
    pymysql.OperationalError(1213, "Deadlock found when trying to get lock"),
    pymysql.OperationalError(1045, "Access denied for user 'console'@'localhost'"),
    sqlite3.OperationalError("database is locked"),
    sqlite3.OperationalError('near "SELEC": syntax error'),
    sqlite3.InterfaceError("Error binding parameter 1: type 'object' is not supported"),
    sqlite3.IntegrityError("UNIQUE constraint failed: customers_customer.email"),
]


def driver_of(error):
    return pymysql if type(error).__module__.startswith("pymysql") else sqlite3


@pytest.mark.parametrize("error", OUTAGES, ids=repr)
def test_connection_level_errors_are_outages_raw_and_as_django_raises_them(error):
    assert outages.is_unreachable(error)
    assert outages.is_unreachable(through_django(driver_of(error), error))


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=repr)
def test_errors_of_the_request_are_not_outages(error):
    assert not outages.is_unreachable(error)
    assert not outages.is_unreachable(through_django(driver_of(error), error))


def test_an_error_raised_from_an_outage_is_an_outage():
    try:
        try:
            raise pymysql.OperationalError(2013, "Lost connection to MySQL server during query")
        except pymysql.OperationalError as lost:
            raise RuntimeError("rendering failed") from lost
    except RuntimeError as error:
        assert outages.is_unreachable(error)
    assert not outages.is_unreachable(ValueError("unrelated"))


# --- which database failed ----------------------------------------------------------------------


def test_the_failing_connection_is_found_in_djangos_traceback(tmp_path):
    """Guards the one assumption of ``failing_alias``: Django raises the error inside the failing connection."""
    users = connections["users"]  # a frame holding another connection must not be taken for the failing one
    with served_by(DOWN, unreachable_settings(DOWN, tmp_path)) as archive:
        with pytest.raises(Exception) as refused:
            archive.ensure_connection()
    assert outages.is_unreachable(refused.value)
    assert outages.failing_alias(refused.value) == DOWN
    # A query error on an open connection: raised by a cursor of "customers".
    with pytest.raises(Exception) as failed, transaction.atomic(using="customers"):
        connections["customers"].cursor().execute("SELECT no_such_column FROM no_such_table")
    assert not outages.is_unreachable(failed.value)
    assert outages.failing_alias(failed.value) == "customers"
    assert users.alias == "users"


def test_no_connection_no_alias():
    assert outages.failing_alias(pymysql.OperationalError(2003, "Can't connect")) is None


# --- the panel whose database is down -----------------------------------------------------------


def test_a_panel_whose_database_is_down_answers_503_naming_it_and_the_log_says_it_once(root_client, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with served_by(DOWN, unreachable_settings(DOWN, tmp_path)):
        for _ in range(5):
            assert_unavailable(root_client.get(panel_page(DOWN)), DOWN, "Customer archive")
            end_request(DOWN)
            assert_others_answer(root_client)
        add = root_client.post(admin_url(DOWN, Customer, "add"), {"name": "Eve", "email": "eve@example.com"})
        assert_unavailable(add, DOWN, "Customer archive")

        home = root_client.get("/")
        assert home.status_code == 200
        status = {panel["site"].alias: panel["status"] for panel in home.context["panels"]}
        assert status[DOWN]["reachable"] is False and status[DOWN]["down_since"] is not None
        assert all(status[alias]["reachable"] for alias in UP)
        page = home.content.decode()
        assert f'data-alias="{DOWN}" data-down="true"' in page
        assert 'data-alias="customers">' in page

    started = outage_records(caplog)
    assert len(started) == 1, [r.getMessage() for r in started]
    assert started[0].levelno == logging.ERROR and started[0].exc_info
    assert "'archive' (Customer archive) is unreachable" in started[0].getMessage()
    # Django does not log each 503 again.
    assert not [r for r in caplog.records if r.name == "django.request" and r.status_code == 503]
    assert outages.board.outage(DOWN).failures >= 7

    # The database is back: the first request that connects to it says so.
    with served_by(DOWN, settings_of(DOWN)):
        assert root_client.get(panel_page(DOWN)).status_code == 200
        end_request(DOWN)
        assert root_client.get(panel_page(DOWN)).status_code == 200
    records = outage_records(caplog)
    assert len(records) == 2
    assert (
        records[1].levelno == logging.WARNING
        and "'archive' (Customer archive) is back after" in records[1].getMessage()
    )
    assert outages.board.outage(DOWN) is None


def test_the_page_names_the_database_that_failed_not_the_panel_asked_for(client, tmp_path, caplog):
    """A request to the customers panel reads its session from ``users``: when that is down, the page says ``users``."""
    with served_by("users", unreachable_settings("users", tmp_path)):
        client.cookies["sessionid"] = "x" * 32
        response = client.get(panel_page("customers"))
    assert_unavailable(response, "users", "User data")
    assert [r.getMessage().split(":")[0] for r in outage_records(caplog)] == [
        "Database 'users' (User data) is unreachable"
    ]


def test_a_database_that_answers_with_an_error_is_a_500_not_an_outage(root_client, tmp_path, caplog):
    """An empty SQLite file ("no such table"), an unknown MariaDB database (1049): errors, not outages."""
    if connections.settings[DOWN]["ENGINE"] == "django.db.backends.mysql":
        broken = settings_of(DOWN, NAME="console_no_such_database")
    else:
        broken = settings_of(DOWN, NAME=str(tmp_path / "empty.sqlite3"))
    with pytest.raises(Exception) as raised, served_by(DOWN, broken):
        root_client.get(panel_page(DOWN))
    assert not outages.is_unreachable(raised.value)
    assert outages.board.outage(DOWN) is None
    assert not outage_records(caplog)


def mysql_settings(port, **options):
    url = f"mysql://console:pw@127.0.0.1:{port}/console_archive"
    config = database_settings({DOWN: {}}, tempfile.gettempdir(), {f"CONSOLE_DB_{DOWN.upper()}": url})[DOWN]
    config["OPTIONS"].update(options)
    return connections.configure_settings({"default": {}, DOWN: config})[DOWN]


def test_the_home_stays_quick_when_a_database_hangs(root_client, caplog):
    """A server that accepts connections and never answers: the home waits about a second for it, not forever."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        # Bounds the test if the home waited on the driver's own time-outs (10 s to connect, none to read).
        timer = threading.Timer(8, silent.close)
        timer.start()
        try:
            with served_by(DOWN, mysql_settings(silent.getsockname()[1])):
                started = time.monotonic()
                home = root_client.get("/")
                elapsed = time.monotonic() - started
        finally:
            timer.cancel()
    assert home.status_code == 200
    status = {panel["site"].alias: panel["status"] for panel in home.context["panels"]}
    assert status[DOWN]["reachable"] is False
    assert all(status[alias]["reachable"] for alias in UP)
    assert elapsed < 3 * outages.PROBE_TIMEOUT + 1, elapsed
    assert len(outage_records(caplog)) == 1


# --- a real second MariaDB server, stopped and started ----------------------------------------------


def mariadb_programs():
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    return server, install


class SecondServer:
    """A throwaway MariaDB server on its own port and data directory, started and stopped by the test."""

    def __init__(self, server, install, directory):
        self.server, self.directory = server, Path(directory)
        self.port = closed_port()
        self.user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.directory / 'data'}",
                "--auth-root-authentication-method=normal",
            ]
            + ["--skip-test-db", *self.user],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.process = None

    def start(self, timeout=30):
        d = self.directory
        self.process = subprocess.Popen(
            [self.server, "--no-defaults", f"--datadir={d / 'data'}", f"--port={self.port}", "--bind-address=127.0.0.1"]
            + [f"--socket={d / 'sock'}", f"--pid-file={d / 'pid'}", f"--log-error={d / 'error.log'}"]
            + ["--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=16M", *self.user],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
                return
            except pymysql.OperationalError as refused:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (d / "error.log").read_text()[-2000:]
                    raise RuntimeError(f"the second MariaDB did not start: {log}") from refused
                time.sleep(0.2)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def settings(self):
        options = {k: v for k, v in connections.settings[DOWN]["OPTIONS"].items() if k != "read_default_file"}
        return settings_of(
            DOWN, HOST="127.0.0.1", PORT=self.port, USER="root", PASSWORD="", NAME="console_archive", OPTIONS=options
        )


@pytest.fixture
def second_server():
    if connections.settings[DOWN]["ENGINE"] != "django.db.backends.mysql":
        pytest.skip("runs in the MariaDB phase (CONSOLE_TEST_DATABASE_URL)")
    server, install = mariadb_programs()
    if not (server and install):
        reason = "mariadbd and mariadb-install-db are not installed: cannot start a second MariaDB server"
        if os.environ.get("CONSOLE_E2E_REQUIRED") == "1":
            pytest.fail(reason + " (CONSOLE_E2E_REQUIRED=1)")
        pytest.skip(reason)
    directory = tempfile.mkdtemp(prefix="console-outage-mariadb-")
    try:
        instance = SecondServer(server, install, directory)
        instance.start()
        yield instance
    finally:
        if "instance" in locals():
            instance.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_second_mariadb_stopped_and_started_under_one_panel(root_client, second_server, caplog):
    caplog.set_level(logging.INFO)
    with pymysql.connect(host="127.0.0.1", port=second_server.port, user="root") as admin:
        admin.cursor().execute("CREATE DATABASE console_archive CHARACTER SET utf8mb4")
    with served_by(DOWN, second_server.settings()):
        call_command("migrate", database=DOWN, verbosity=0)
        Customer(name="Archie Archive", email="archie@example.com", country="DE").save(using=DOWN)
        end_request(DOWN)

        up = root_client.get(panel_page(DOWN))
        assert up.status_code == 200 and "Archie Archive" in up.content.decode()
        end_request(DOWN)

        second_server.stop()
        for _ in range(3):
            assert_unavailable(root_client.get(panel_page(DOWN)), DOWN, "Customer archive")
            end_request(DOWN)
            assert_others_answer(root_client)
        home = root_client.get("/")
        assert 'data-down="true"' in home.content.decode()
        assert {panel["site"].alias for panel in home.context["panels"] if not panel["status"]["reachable"]} == {DOWN}

        second_server.start()
        back = root_client.get(panel_page(DOWN))
        assert back.status_code == 200 and "Archie Archive" in back.content.decode()
        assert_others_answer(root_client)

    messages = [record.getMessage() for record in outage_records(caplog)]
    assert len(messages) == 2, messages
    assert "'archive' (Customer archive) is unreachable" in messages[0]
    assert "'archive' (Customer archive) is back after" in messages[1]
