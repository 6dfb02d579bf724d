"""Fixtures of the end-to-end tests: the console under mod_wsgi-express against MariaDB, HTTP clients, a browser.

They run in ``make test``'s MariaDB phase (``CONSOLE_TEST_DATABASE_URL`` set)
and are skipped without it.  Missing Apache development files or chromium skip
them with the reason, except with ``CONSOLE_E2E_REQUIRED=1`` (CI), where a
missing piece is a failure.  Each session gets its own MariaDB databases
(``console_<prefix>_e2e_<alias>``), made by the console's own commands in
subprocesses, and one server: daemon mode, two processes, loopback only.
The e2e tests run after every other test, the MariaDB restart last of all.
"""

import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from admin_site.express import REPO, Runtime, Server, ServerError, Unavailable, prepare_runtime, trusted_cache
from tests.e2e.client import Client

HERE = Path(__file__).resolve().parent
REQUIRED = os.environ.get("CONSOLE_E2E_REQUIRED") == "1"
ARTIFACTS = REPO / "test-artifacts"
PANELS = ("users", "customers", "legacy")
#: Runs last: it restarts the MariaDB server every other test uses.
LAST_MODULE = "test_zz_mariadb_restart.py"
#: Seconds per phase of the session's server (and a count or two), shown in the terminal summary.
TIMINGS = {}


def missing(reason):
    """A piece of the e2e setup is absent: skip, or fail when CI requires the e2e tests."""
    if REQUIRED:
        pytest.fail(f"{reason} (CONSOLE_E2E_REQUIRED=1: the e2e tests must run)", pytrace=False)
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        shown = [f"{k} {v:.1f}s" if isinstance(v, float) else f"{k} {v}" for k, v in TIMINGS.items()]
        terminalreporter.write_line("e2e: " + ", ".join(shown))


def pytest_collection_modifyitems(session, config, items):
    """Mark the e2e tests, skip them at once without MariaDB, and run them after the rest."""
    ours = [item for item in items if HERE in Path(item.path).parents]
    no_mariadb = pytest.mark.skip(reason='e2e tests need MariaDB: eval "$(tests/mariadb.sh)" (make test-mariadb)')
    for item in ours:
        item.add_marker(pytest.mark.e2e)
        if not os.environ.get("CONSOLE_TEST_DATABASE_URL"):
            item.add_marker(no_mariadb)
    ours.sort(key=lambda item: Path(item.path).name == LAST_MODULE)  # stable: keeps the order within modules
    items[:] = [item for item in items if item not in ours] + ours


# -- MariaDB ---------------------------------------------------------------------------------------------------------


@dataclass
class MariaDB:
    """The test server from ``CONSOLE_TEST_DATABASE_URL`` (credentials in an option file)."""

    host: str
    port: int
    option_file: str

    @classmethod
    def from_env(cls):
        url = urlsplit(os.environ["CONSOLE_TEST_DATABASE_URL"])
        option_file = parse_qs(url.query).get("read_default_file", [""])[0]
        if not option_file:
            pytest.fail("the e2e tests need CONSOLE_TEST_DATABASE_URL with ?read_default_file= (tests/mariadb.sh)")
        return cls(url.hostname or "127.0.0.1", url.port or 3306, option_file)

    def connect(self, database=None, option_file=None):
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            read_default_file=option_file or self.option_file,
            database=database,
            autocommit=True,
            charset="utf8mb4",
        )

    def query(self, database, sql, *args):
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall()
        finally:
            connection.close()


@dataclass
class Console:
    """The served console and what the tests need to talk to it and check its databases."""

    server: Server
    runtime: Runtime
    db: MariaDB
    databases: dict
    password: str
    timings: dict = field(default_factory=dict)
    #: username -> the hex key of the TOTP device the fixture gave that user (the server requires a code).
    otp_keys: dict = field(default_factory=dict)
    _otp_used: dict = field(default_factory=dict)
    _otp_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self):
        return self.server.url

    def client(self):
        return Client(self.server.url, otp_code=self.otp_code)

    def otp_code(self, username):
        """A code the server accepts for ``username``: the current TOTP code (pyotp), or a backup code.

        The server accepts each time step's TOTP code once; a second login within the same 30 seconds
        gets one of the user's backup codes (``e2ebackup<n>``, made by the fixture) instead.
        """
        import pyotp

        secret = base64.b32encode(bytes.fromhex(self.otp_keys[username])).decode()
        with self._otp_lock:
            now = time.time()
            step = int(now // 30)
            used = self._otp_used.setdefault(username, {"step": -1, "backup": 0})
            if step > used["step"]:
                used["step"] = step
                return pyotp.TOTP(secret).at(now)
            used["backup"] += 1
            return f"e2ebackup{used['backup']}"

    def admin(self):
        """A client logged in as the superuser (through the users panel)."""
        client = self.client()
        assert client.login("users", "e2e-admin", self.password).status == 302
        return client

    def rows(self, alias, sql, *args):
        return self.db.query(self.databases[alias], sql, *args)


SEED_USERS = """
import json
import os
from django.contrib.auth.models import Permission, User
password = os.environ["E2E_PASSWORD"]
users = User.objects.db_manager("users")
users.create_superuser("e2e-admin", "admin@example.com", password)
clerk = users.create_user("e2e-clerk", "clerk@example.com", password, is_staff=True)
clerk.user_permissions.set(
    Permission.objects.using("users").filter(codename__in=["access_customers", "view_customer"])
)
users.create_user("e2e-nopanel", "nopanel@example.com", password, is_staff=True)
# A second factor for the users who enter panels (every panel requires one): a TOTP device and backup codes.
users.create_user("e2e-enrol", "enrol@example.com", password, is_superuser=True, is_staff=True)
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
for username, key in json.loads(os.environ["E2E_OTP_KEYS"]).items():
    user = users.get(username=username)
    TOTPDevice.objects.using("users").create(user=user, name="e2e", key=key, confirmed=True)
    backup = StaticDevice.objects.using("users").create(user=user, name="Backup codes")
    StaticToken.objects.using("users").bulk_create(
        [StaticToken(device=backup, token=f"e2ebackup{n}") for n in range(1, 501)]
    )
"""


def report(config, line):
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


@pytest.fixture(scope="session")
def console(request):
    """The console under mod_wsgi-express on a free loopback port, on its own MariaDB databases."""
    timings = TIMINGS
    clock = _Clock(timings)
    is_root = os.geteuid() == 0
    try:
        work = Path(tempfile.mkdtemp(prefix="e2e-", dir=trusted_cache() if is_root else None))
    except Unavailable as reason:
        missing(str(reason))
    os.chmod(work, 0o755)
    server = log = None
    db = MariaDB.from_env()
    prefix = os.environ.get("CONSOLE_TEST_DB_PREFIX", "console")
    databases = {alias: f"console_{prefix}_e2e_{alias}" for alias in PANELS}
    try:
        with clock("runtime"):
            try:
                runtime = prepare_runtime(work)
            except Unavailable as reason:
                missing(str(reason))
        # The daemon's account reads the credentials; nobody else may.
        option_file = work / "mariadb.cnf"
        shutil.copyfile(db.option_file, option_file)
        runtime.give(option_file, 0o600)
        for name in ("var", "imports", "exports"):
            (work / name).mkdir()
            runtime.give(work / name, 0o700)
        password = secrets.token_urlsafe(12)
        otp_keys = {username: secrets.token_hex(20) for username in ("e2e-admin", "e2e-clerk")}
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "tests.e2e.server_settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "CONSOLE_VAR_DIR": str(work / "var"),
            "CONSOLE_IMPORT_DIR": str(work / "imports"),
            "CONSOLE_STATIC_ROOT": str(work / "static"),
            # The export tests here are about the streamed download (cut off when it fails), which big
            # exports leave for the background worker; tests/test_background_transfers.py covers that.
            "CONSOLE_BACKGROUND_EXPORT_ROWS": str(10**9),
            **{
                f"CONSOLE_DB_{alias.upper()}": f"mysql://{db.host}:{db.port}/{name}?read_default_file={option_file}"
                for alias, name in databases.items()
            },
        }
        with clock("databases"):
            connection = db.connect()
            with connection.cursor() as cursor:
                for name in databases.values():
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
                    cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            connection.close()
            runtime.manage("migrate_all", "--verbosity", "0", env=env)
            runtime.manage("create_legacy_schema", "--database", "legacy", "--verbosity", "0", env=env)
            runtime.manage("load_demo_data", "--customers", "40", "--users", "0", "--legacy", "20", env=env)
            seed_env = {**env, "E2E_PASSWORD": password, "E2E_OTP_KEYS": json.dumps(otp_keys)}
            runtime.manage("shell", "-c", SEED_USERS, env=seed_env)
            runtime.manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
        # Append: Apache reopens /dev/stderr, and a shared offset would let it overwrite the start.
        log = open(work / "server.log", "a")  # noqa: SIM115 - closed after the server stops
        server = Server(runtime, work / "server", env=env, processes=2, threads=3, log=log)
        with clock("start"):
            server.start()
            server.wait_ready()
        yield Console(server, runtime, db, databases, password, timings, otp_keys)
        with clock("stop"):
            server.stop()
        server = None
    finally:
        if server is not None:  # a failed start: stop what there is, keep the log
            try:
                server.stop()
            except ServerError as error:
                report(request.config, str(error))
        if log is not None:
            log.close()
        if (work / "server.log").exists():
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copyfile(work / "server.log", ARTIFACTS / "e2e-server.log")
        shutil.rmtree(work, ignore_errors=True)
        try:
            connection = db.connect()
            with connection.cursor() as cursor:
                for name in databases.values():
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            connection.close()
        except Exception as error:  # the databases are dropped again next session
            report(request.config, f"e2e: could not drop the e2e databases: {error}")


class _Clock:
    def __init__(self, timings):
        self.timings = timings

    def __call__(self, name):
        import contextlib
        import time

        @contextlib.contextmanager
        def timed():
            started = time.monotonic()
            try:
                yield
            finally:
                self.timings[name] = time.monotonic() - started

        return timed()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def server_processes(server):
    """(pid, user, command line) of every live process of ``server``."""
    import pwd

    from admin_site.express import session_processes

    found = []
    for pid in session_processes(server.process.pid):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        found.append((pid, pwd.getpwuid(uid).pw_name, cmdline))
    return found


def daemon_processes(server):
    """The mod_wsgi daemon processes among ``server``'s processes."""
    return [process for process in server_processes(server) if process[2].startswith("(wsgi:")]


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)
