"""A real scale-out rig for the tests: a MariaDB primary with a GTID replica, two app hosts behind nginx.

Everything is started here, under one temporary directory, and stopped again (``stop()``, and at exit):

- ``MariaDBPair``: two ``mariadbd`` (Debian's 10.11) with their own data directories, sockets and free
  ports on 127.0.0.1, GTID replication primary -> replica (``MASTER_USE_GTID=slave_pos``), the replica
  ``read_only``.  An application user (random password) may use ``console_%`` and ``test_%`` on both,
  without SUPER or READ ONLY ADMIN, so ``read_only`` binds it on the replica.  The rig talks to each
  server as root over its unix socket.  The machine's MariaDB on 3306 is never touched.
- ``Balancer``: nginx with its own configuration, pid file, logs and temp directories, on 127.0.0.4,
  round-robin to the app hosts, ``proxy_next_upstream error timeout``, the deploy guide's Host and
  X-Forwarded-* headers, and an ``X-Upstream`` answer header naming the host that answered.
- ``AppHost``: one mod_wsgi-express server (``admin_site.express.Server``) on its own loopback address.
- ``Rig``: the whole thing, with the console's panel databases on the pair's primary and users seeded
  as the e2e tests seed them; ``replicas=True`` also gives every host ``CONSOLE_DB_<ALIAS>_REPLICAS``.

Starting and stopping each piece is timed in ``timings`` (seconds).

Use from an e2e test module (tests/e2e/test_scaleout_rig.py does the same, with skips for missing pieces)::

    @pytest.fixture(scope="module")
    def rig():
        with Rig(prefix="replicas", replicas=True) as rig:  # the hosts get CONSOLE_DB_<ALIAS>_REPLICAS
            yield rig

    def test_saved_value_is_seen_at_once(rig):
        client = rig.admin()                   # logged in through the balancer (second factor answered)
        rig.pair.stop_sql_thread()             # the replica lags from now on
        page = client.get("/customers/customers/customer/")
        host = rig.host(page.headers["X-Upstream"].split(",")[-1].strip())
        rig.kill_host(host)                    # SIGKILL; rig.restart_host(host) brings it back
        rig.pair.kill_replica(); rig.pair.start_replica(); rig.pair.wait_caught_up(30)
"""

import atexit
import contextlib
import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pymysql

from admin_site.express import Server, daemon_account, free_port, prepare_runtime, session_processes, trusted_cache

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
NGINX = "/usr/sbin/nginx"
#: The machine's own MariaDB: never ours.
MACHINE_PORT = 3306
#: Small servers: start-up time and memory matter more than throughput here.
SERVER_OPTIONS = (
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--skip-name-resolve",
    "--performance-schema=OFF",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    # A SIGKILL of the process loses nothing with these (the OS keeps the writes); a crash of the machine could.
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
)
#: Databases the application user may use (as tests/mariadb.sh grants on the machine's server).
APP_DATABASES = ("console\\_%", "test\\_%")
#: Global privileges of the application user: read replication state and lag, none that passes read_only.
APP_GLOBAL_PRIVILEGES = "PROCESS, BINLOG MONITOR, SLAVE MONITOR"
PANELS = ("users", "customers", "legacy")
#: Loopback addresses: the app hosts, then the balancer (all answer on Linux without any set-up).
HOST_ADDRESSES = ("127.0.0.2", "127.0.0.3")
BALANCER_ADDRESS = "127.0.0.4"
#: Redis databases the rigs take turns on (a lock file per database); the suite's own cache tests use 0.
REDIS_DATABASES = range(8, 16)


class RigError(Exception):
    """A piece of the rig did not start or stop; the message carries its log."""


def _tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _kill_session(pid):
    """SIGKILL every process of the session led by ``pid`` (a server started with ``start_new_session``)."""
    for member in session_processes(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


class Timings(dict):
    """Seconds per step, in the order they happened."""

    @contextlib.contextmanager
    def __call__(self, name):
        started = time.monotonic()
        try:
            yield
        finally:
            self[name] = round(time.monotonic() - started, 2)

    def shown_in(self, other, prefix=""):
        """Copy every timing into ``other`` (a dict), now and whenever one is recorded later."""
        self._mirrors = [*getattr(self, "_mirrors", []), (other, prefix)]
        for name, seconds in self.items():
            other[prefix + name] = seconds

    def __setitem__(self, name, seconds):
        super().__setitem__(name, seconds)
        for other, prefix in getattr(self, "_mirrors", []):
            other[prefix + name] = seconds


# -- MariaDB ---------------------------------------------------------------------------------------------------------


class MariaDBServer:
    """One ``mariadbd`` on a free port of 127.0.0.1 with its own data directory and socket."""

    def __init__(self, name, base_dir, server_id, *, replica=False):
        self.name, self.server_id, self.replica = name, server_id, replica
        self.dir = Path(base_dir) / name
        self.datadir = self.dir / "data"
        self.socket = self.dir / "mariadb.sock"
        self.log = self.dir / "error.log"
        self.port = free_port("127.0.0.1")
        if self.port == MACHINE_PORT:  # free_port never returns a port in use; belt and braces
            raise RigError("refusing port 3306: it belongs to the machine's MariaDB")
        self.process = None

    def command(self):
        argv = [MARIADBD, "--no-defaults"]
        if os.geteuid() == 0:
            argv.append("--user=root")
        argv += [
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--pid-file={self.dir / 'mariadb.pid'}",
            f"--log-error={self.log}",
            f"--tmpdir={self.dir}",
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            f"--server-id={self.server_id}",
            f"--log-bin={self.datadir / 'binlog'}",
            "--binlog-format=ROW",
            "--gtid-strict-mode=ON",
            *SERVER_OPTIONS,
        ]
        if self.replica:
            argv += [f"--relay-log={self.datadir / 'relay'}", "--read-only=ON"]
        return argv

    def start(self):
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        return self

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RigError(f"mariadbd ({self.name}) exited with {self.process.returncode}\n{_tail(self.log)}")
            try:
                self.connect(connect_timeout=1).close()
                return
            except Exception as error:
                # By name: once Django's MySQL backend has loaded PyMySQL as MySQLdb, the class raised may be another
                # module object's OperationalError than ``pymysql.err.OperationalError`` (admin_site.outages).
                if type(error).__name__ != "OperationalError":
                    raise
                time.sleep(0.1)
        raise RigError(f"mariadbd ({self.name}) not answering after {timeout}s\n{_tail(self.log)}")

    def connect(self, database=None, **kwargs):
        """A root connection over the unix socket (root@localhost authenticates by socket)."""
        return pymysql.connect(
            unix_socket=str(self.socket),
            user=pwd.getpwuid(os.geteuid()).pw_name,
            database=database,
            autocommit=True,
            charset="utf8mb4",
            **kwargs,
        )

    def sql(self, sql, *args, database=None):
        """Run one statement as root; returns its rows."""
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args or None)
                return cursor.fetchall()
        finally:
            connection.close()

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout=20):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


class MariaDBPair:
    """A MariaDB primary and a GTID replica of it, each its own ``mariadbd``; ``start()`` returns when replicating."""

    def __init__(self, base_dir=None, *, app_user="console"):
        self._own_dir = base_dir is None
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="mariadb-pair-"))
        self.app_user, self.app_password = app_user, secrets.token_hex(16)
        self._repl_password = secrets.token_hex(16)
        self.primary = MariaDBServer("primary", self.dir, 1)
        self.replica = MariaDBServer("replica", self.dir, 2, replica=True)
        self.timings = Timings()
        atexit.register(self.stop)

    # Start-up ----------------------------------------------------------------------------------------------------

    def start(self):
        try:
            with self.timings("mariadb install"):
                self._install()
            with self.timings("mariadb start"):
                for server in (self.primary, self.replica):
                    server.start()
                for server in (self.primary, self.replica):
                    server.wait_ready()
            with self.timings("replication"):
                self._set_up_replication()
        except BaseException:
            self.stop()
            raise
        return self

    def _install(self):
        """One ``mariadb-install-db``, copied for the replica: the two start with identical system tables."""
        self.primary.dir.mkdir(parents=True)
        argv = [INSTALL_DB, "--no-defaults", f"--datadir={self.primary.datadir}", "--skip-test-db"]
        argv += ["--auth-root-authentication-method=socket", *SERVER_OPTIONS[:3]]
        if os.geteuid() == 0:
            argv.append("--user=root")
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode:
            raise RigError(f"{INSTALL_DB} failed:\n{result.stdout}\n{result.stderr}")
        self.replica.dir.mkdir(parents=True)
        shutil.copytree(self.primary.datadir, self.replica.datadir, symlinks=True)

    def _set_up_replication(self):
        grant_to = f"'{self.app_user}'@'127.0.0.1'"
        statements = [
            f"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{self._repl_password}'",
            "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
            f"CREATE USER {grant_to} IDENTIFIED BY '{self.app_password}'",
            *(f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO {grant_to}" for pattern in APP_DATABASES),
            f"GRANT {APP_GLOBAL_PRIVILEGES} ON *.* TO {grant_to}",
        ]
        for statement in statements:  # binary-logged: the replica gets the users from the primary
            self.primary.sql(statement)
        self.replica.sql(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.primary.port}, MASTER_USER='repl', "
            f"MASTER_PASSWORD='{self._repl_password}', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos"
        )
        self.replica.sql("START SLAVE")
        self.wait_caught_up(30)

    # What the tests use ------------------------------------------------------------------------------------------

    def server(self, which):
        return {"primary": self.primary, "replica": self.replica}[which]

    def url(self, which, database):
        """The application user's URL for ``database`` on ``which`` ("primary" or "replica")."""
        server = self.server(which)
        return f"mysql://{self.app_user}:{self.app_password}@127.0.0.1:{server.port}/{database}"

    def primary_sql(self, sql, *args, database=None):
        return self.primary.sql(sql, *args, database=database)

    def replica_sql(self, sql, *args, database=None):
        return self.replica.sql(sql, *args, database=database)

    def app_connect(self, which, database=None):
        """A connection as the application user over TCP (what the console's hosts get)."""
        return pymysql.connect(
            host="127.0.0.1",
            port=self.server(which).port,
            user=self.app_user,
            password=self.app_password,
            database=database,
            autocommit=True,
            charset="utf8mb4",
        )

    def create_database(self, name):
        """(Re)create ``name`` on the primary; the replica gets it through replication."""
        self.primary_sql(f"DROP DATABASE IF EXISTS `{name}`")
        self.primary_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")

    def stop_sql_thread(self):
        """The replica keeps receiving the primary's binary log but applies nothing: it lags."""
        self.replica_sql("STOP SLAVE SQL_THREAD")

    def start_sql_thread(self):
        self.replica_sql("START SLAVE SQL_THREAD")

    def slave_status(self):
        connection = self.replica.connect()
        try:
            with connection.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                return cursor.fetchone() or {}
        finally:
            connection.close()

    def wait_caught_up(self, timeout=30):
        """Wait until the replica has applied everything the primary has logged; returns the seconds it took."""
        started = time.monotonic()
        (position,) = self.primary_sql("SELECT @@gtid_binlog_pos")[0]
        (result,) = self.replica_sql("SELECT MASTER_GTID_WAIT(%s, %s)", position, timeout)[0]
        if result != 0:
            status = self.slave_status()
            summary = {k: status.get(k) for k in ("Slave_IO_Running", "Slave_SQL_Running", "Last_Error")}
            raise RigError(f"replica not at the primary's {position} after {timeout}s: {summary}")
        return time.monotonic() - started

    def kill_replica(self):
        """SIGKILL the replica's ``mariadbd`` (its data directory stays)."""
        self.replica.kill()

    def start_replica(self, timeout=60):
        """Start the replica again on the same data directory and port; it resumes replicating by itself."""
        with self.timings("replica restart"):
            self.replica.start()
            self.replica.wait_ready(timeout)

    def stop(self):
        for server in (self.replica, self.primary):
            with contextlib.suppress(Exception):
                server.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


# -- nginx -----------------------------------------------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
{user}
events {{ worker_connections 512; }}

http {{
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    log_format upstream '$remote_addr "$request" $status upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {prefix}/access.log upstream;

    upstream console_hosts {{
{servers}
    }}

    server {{
        listen {address}:{port};
        # As deploy/uwsgi/nginx-data-console.conf: above CONSOLE_IMPORT_MAX_BYTES (50 MB).
        client_max_body_size 60m;

        location / {{
            proxy_pass http://console_hosts;
            # A host that refuses or does not answer: the request (if idempotent) goes to the next one.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
            # What the client asked for, port included (Django's host and CSRF origin checks), and the
            # client's address for CONSOLE_TRUSTED_PROXIES=1 (uwsgi_params passes the same to uWSGI).
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


class Balancer:
    """nginx on ``address``:<free port>, round-robin over ``upstreams`` ((host, port) pairs)."""

    def __init__(self, prefix, upstreams, *, address=BALANCER_ADDRESS, port=None):
        self.prefix = Path(prefix)
        self.upstreams, self.address = list(upstreams), address
        self.port = port or free_port(address)
        self.process = None

    @property
    def url(self):
        return f"http://{self.address}:{self.port}"

    @property
    def access_log(self):
        return self.prefix / "access.log"

    def log_entries(self):
        """(request line, [``host:port`` of every upstream nginx tried]) per logged request, in order."""
        entries = []
        for line in self.access_log.read_text().splitlines():
            request = line.split('"', 2)[1]
            field = line.split(" upstream=", 1)[1].split(" ", 1)[0]
            entries.append((request, [] if field == "-" else [part.strip() for part in field.split(",")]))
        return entries

    def write_config(self):
        user, group = daemon_account()
        servers = "\n".join(
            f"        server {host}:{port} max_fails=1 fail_timeout=10s;" for host, port in self.upstreams
        )
        text = NGINX_CONF.format(
            prefix=self.prefix,
            user=f"user {user} {group};" if user else "",
            servers=servers,
            address=self.address,
            port=self.port,
        )
        self.prefix.mkdir(parents=True, exist_ok=True)
        os.chmod(self.prefix, 0o755)
        (self.prefix / "temp").mkdir(exist_ok=True)
        if user:  # the workers buffer request and answer bodies there
            entry = pwd.getpwnam(user)
            os.chown(self.prefix / "temp", entry.pw_uid, entry.pw_gid)
        conf = self.prefix / "nginx.conf"
        conf.write_text(text)
        return conf

    def start(self, timeout=15):
        if not Path(NGINX).exists():
            raise RigError(f"{NGINX} not found (apt-get install nginx)")
        conf = self.write_config()
        self.process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.prefix)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RigError(f"nginx exited with {self.process.returncode}\n{_tail(self.prefix / 'error.log')}")
            with contextlib.suppress(OSError), socket.create_connection((self.address, self.port), timeout=1):
                return self
            time.sleep(0.05)
        raise RigError(f"nginx not listening on {self.address}:{self.port}\n{_tail(self.prefix / 'error.log')}")

    def stop(self, timeout=10):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _kill_session(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


# -- App hosts -------------------------------------------------------------------------------------------------------


class AppHost:
    """One app host: mod_wsgi-express (daemon mode) on its own loopback address, as ``manage.py serve`` runs it."""

    def __init__(self, name, runtime, work_dir, *, env, address, processes=1, threads=3):
        self.name, self.runtime, self.env, self.address = name, runtime, env, address
        self.dir = Path(work_dir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.processes, self.threads = processes, threads
        self.port = free_port(address)
        self.server = self.log = None

    @property
    def url(self):
        return f"http://{self.address}:{self.port}"

    @property
    def upstream(self):
        return f"{self.address}:{self.port}"

    def start(self):
        self.log = open(self.dir / "server.log", "a")  # noqa: SIM115 - closed in stop()/kill()
        self.server = Server(
            self.runtime, self.dir / "server", env=self.env, host=self.address, port=self.port,
            processes=self.processes, threads=self.threads, log=self.log,
        )  # fmt: skip
        self.server.start()
        return self

    def wait_ready(self, timeout=60):
        return self.server.wait_ready(timeout=timeout)

    @property
    def alive(self):
        return self.server is not None and self.server.process.poll() is None

    def kill(self):
        """SIGKILL the Apache parent and every daemon process at once: the host is gone, as in a crash."""
        if self.server is None:
            return
        _kill_session(self.server.process.pid)
        self.server.process.wait(10)
        deadline = time.monotonic() + 10
        while session_processes(self.server.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._close_log()

    def stop(self):
        if self.server is not None:
            try:
                self.server.stop()
            finally:
                self._close_log()

    def _close_log(self):
        if self.log is not None:
            self.log.close()
            self.log = None


# -- The whole rig ---------------------------------------------------------------------------------------------------


class Rig:
    """A MariaDB pair, ``hosts`` app hosts sharing sessions, uploads, cache and secret key, nginx in front.

    The console's panel databases (``console_<prefix>_<alias>``) live on the primary; with ``replicas=True``
    each host also gets ``CONSOLE_DB_<ALIAS>_REPLICAS`` = the replica's URL for the same database.
    ``extra_env`` is added to every host's environment.  Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(self, *, prefix="rig", replicas=False, hosts=2, processes=1, threads=3, extra_env=None):
        self.prefix, self.replicas = prefix, replicas
        if not 1 <= hosts <= len(HOST_ADDRESSES):
            raise ValueError(f"hosts: 1 to {len(HOST_ADDRESSES)}")
        self.host_count, self.processes, self.threads = hosts, processes, threads
        self.extra_env = dict(extra_env or {})
        self.timings = Timings()
        self.pair = self.balancer = self.runtime = None
        self.hosts = []
        self.databases = {alias: f"console_{prefix}_{alias}" for alias in PANELS}
        self.password = secrets.token_urlsafe(12)
        self.secret_key = secrets.token_urlsafe(50)
        self.otp_keys = {username: secrets.token_hex(20) for username in ("e2e-admin", "e2e-clerk")}
        self.console = None
        self._redis_lock = None
        self.work = None

    # Start-up ----------------------------------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        from tests.e2e.conftest import SEED_USERS, Console

        self.work = Path(tempfile.mkdtemp(prefix="rig-", dir=trusted_cache() if os.geteuid() == 0 else None))
        os.chmod(self.work, 0o755)
        self.pair = MariaDBPair(self.work / "mariadb")
        pair_started = threading.Thread(target=self._start_pair)
        pair_started.start()  # the runtime (a cached venv, a copy of the code) meanwhile
        with self.timings("runtime"):
            self.runtime = prepare_runtime(self.work)
        pair_started.join()
        if self._pair_error is not None:
            raise self._pair_error
        self.pair.timings.shown_in(self.timings)  # and the replica restarts to come
        for name in ("imports", "exports", *(f"var-{index}" for index in range(self.host_count))):
            (self.work / name).mkdir()
            self.runtime.give(self.work / name, 0o700)
        env = self.host_env(0)
        with self.timings("databases"):
            for name in self.databases.values():
                self.pair.create_database(name)
            self.runtime.manage("migrate_all", "--verbosity", "0", env=env)
            self.runtime.manage("create_legacy_schema", "--database", "legacy", "--verbosity", "0", env=env)
            self.runtime.manage("load_demo_data", "--customers", "40", "--users", "0", "--legacy", "20", env=env)
            seed_env = {**env, "E2E_PASSWORD": self.password, "E2E_OTP_KEYS": json.dumps(self.otp_keys)}
            self.runtime.manage("shell", "-c", SEED_USERS, env=seed_env)
            self.runtime.manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
        with self.timings("replica caught up"):
            self.pair.wait_caught_up(60)
        with self.timings("hosts"):
            for index, address in enumerate(HOST_ADDRESSES[: self.host_count]):
                host = AppHost(f"host-{'ab'[index]}", self.runtime, self.work, env=self.host_env(index),
                               address=address, processes=self.processes, threads=self.threads)  # fmt: skip
                self.hosts.append(host.start())
            for host in self.hosts:
                host.wait_ready()
        with self.timings("balancer"):
            self.balancer = Balancer(self.work / "nginx", [(h.address, h.port) for h in self.hosts]).start()
        self.console = Console(self.balancer, self.runtime, _PrimaryQueries(self.pair), self.databases,
                               self.password, self.timings, self.otp_keys)  # fmt: skip

    _pair_error = None

    def _start_pair(self):
        try:
            self.pair.start()
        except BaseException as error:  # raised again in the main thread
            self._pair_error = error

    def host_env(self, index):
        """Host ``index``'s environment: all shared but ``CONSOLE_VAR_DIR`` (the host's own files)."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "tests.e2e.server_settings",
            "DJANGO_SECRET_KEY": self.secret_key,
            "DJANGO_ALLOWED_HOSTS": ",".join(["127.0.0.1", "localhost", *HOST_ADDRESSES, BALANCER_ADDRESS]),
            # One proxy (nginx) appends the client's address to X-Forwarded-For.
            "CONSOLE_TRUSTED_PROXIES": "1",
            "CONSOLE_VAR_DIR": str(self.work / f"var-{index}"),
            "CONSOLE_IMPORT_DIR": str(self.work / "imports"),
            "CONSOLE_EXPORT_DIR": str(self.work / "exports"),
            "CONSOLE_STATIC_ROOT": str(self.work / "static"),
            "CONSOLE_CACHE_URL": self._redis_url(),
            "CONSOLE_BACKGROUND_EXPORT_ROWS": str(10**9),
        }
        for alias, name in self.databases.items():
            env[f"CONSOLE_DB_{alias.upper()}"] = self.pair.url("primary", name)
            if self.replicas:
                env[f"CONSOLE_DB_{alias.upper()}_REPLICAS"] = self.pair.url("replica", name)
        env.update(self.extra_env)
        return env

    def _redis_url(self):
        """``redis://127.0.0.1:6379/<n>``: a Redis database no other running rig holds, emptied for this one."""
        if self._redis_lock is None:
            import redis

            for number in REDIS_DATABASES:
                lock = open(Path(tempfile.gettempdir()) / f"data-console-rig-redis-{number}.lock", "w")  # noqa: SIM115
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    lock.close()
                    continue
                self._redis_lock, self._redis_db = lock, number
                break
            else:
                raise RigError(f"every Redis database in {REDIS_DATABASES} is held by another rig")
            redis.Redis(host="127.0.0.1", port=6379, db=self._redis_db, socket_timeout=5).flushdb()
        return f"redis://127.0.0.1:6379/{self._redis_db}"

    # What the tests use ------------------------------------------------------------------------------------------

    @property
    def url(self):
        """The balancer: where users go."""
        return self.balancer.url

    def client(self, host=None):
        """An HTTP client (tests.e2e.client) through the balancer, or straight to ``host`` (an AppHost)."""
        from tests.e2e.client import Client

        return Client(host.url if host else self.balancer.url, otp_code=self.console.otp_code)

    def admin(self):
        """A client logged in as the superuser through the balancer."""
        client = self.client()
        response = client.login("users", "e2e-admin", self.password)
        assert response.status == 302, (response.status, response.text[-1000:])
        return client

    def rows(self, alias, sql, *args, on="primary"):
        """Rows of ``sql`` in ``alias``'s database on the primary (or ``on="replica"``), as root."""
        return self.pair.server(on).sql(sql, *args, database=self.databases[alias])

    def host(self, upstream):
        """The AppHost whose ``address:port`` is ``upstream`` (an ``X-Upstream`` value)."""
        return next(host for host in self.hosts if host.upstream == upstream)

    def kill_host(self, host):
        host.kill()

    def restart_host(self, host, timeout=60):
        """Start a killed host again on the same address and port."""
        with self.timings(f"{host.name} restart"):
            host.start()
            host.wait_ready(timeout)

    def stop(self):
        if self.work is None:
            return
        with self.timings("stop"):
            if self.balancer is not None:
                with contextlib.suppress(Exception):
                    self.balancer.stop()
            for host in self.hosts:
                with contextlib.suppress(Exception):
                    host.stop()
            if self.pair is not None:
                self.pair.stop()
        if self._redis_lock is not None:
            self._redis_lock.close()
            self._redis_lock = None
        shutil.rmtree(self.work, ignore_errors=True)
        self.work = None


class _PrimaryQueries:
    """``tests.e2e.conftest.Console``'s ``db``: ``query(database, sql, *args)`` on the primary."""

    def __init__(self, pair):
        self.pair = pair

    def query(self, database, sql, *args):
        return self.pair.primary_sql(sql, *args, database=database)
