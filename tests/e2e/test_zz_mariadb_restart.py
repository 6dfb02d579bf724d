"""MariaDB restarts under a running console: the next requests succeed, Apache is not restarted.

The daemons keep connections (``CONN_MAX_AGE``) with health checks, so a
connection the server dropped must be replaced, not reported as a 500.  This
module runs last (``conftest.LAST_MODULE``): the restart drops every client's
connections, this process's included, which are closed before anything else
uses them.  On a shared machine it does not pull the server from under other
clients: it waits for them to leave, then skips (fails with CONSOLE_E2E_REQUIRED=1).
"""

import os
import shutil
import subprocess
import time

from django.db import connections

from tests.e2e.conftest import missing

CUSTOMERS = "/customers/customers/customer/"


def mariadb_answers():
    ping = ["mysqladmin", "--user=root", "--connect-timeout=1", "ping"]
    return subprocess.run(ping, capture_output=True).returncode == 0


def restart_mariadb():
    """Stop and start the local server the way tests/mariadb.sh starts it; returns the seconds it was away."""
    started = time.monotonic()
    stop = subprocess.run(["mysqladmin", "--user=root", "shutdown"], capture_output=True, text=True)
    assert stop.returncode == 0, stop.stderr
    deadline = time.monotonic() + 60
    while subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "mariadbd did not stop"
        time.sleep(0.2)
    os.makedirs("/run/mysqld", exist_ok=True)
    shutil.chown("/run/mysqld", "mysql", "mysql")
    subprocess.run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"], check=True
    )
    while not mariadb_answers():
        assert time.monotonic() < deadline, "mariadbd did not come back"
        time.sleep(0.2)
    return time.monotonic() - started


def other_clients(console):
    """MariaDB sessions that belong neither to this test session nor to its server."""
    ours = set(console.databases.values())
    prefix = f"test_{os.environ.get('CONSOLE_TEST_DB_PREFIX', 'console')}_"
    rows = console.db.query(
        None,
        "SELECT ID, USER, DB FROM information_schema.PROCESSLIST WHERE ID != CONNECTION_ID() AND USER != 'system user'",
    )
    return [row for row in rows if row[2] not in ours and not (row[2] or "").startswith(prefix)]


def wait_for_other_clients(console):
    deadline = time.monotonic() + float(os.environ.get("CONSOLE_E2E_RESTART_WAIT", 120))
    while (others := other_clients(console)) and time.monotonic() < deadline:
        time.sleep(2)
    if others:
        missing(f"MariaDB serves other clients too, not restarting it under them: {others}")


def warm(console, client):
    """Requests until both daemon processes hold connections to the databases."""
    pids = set()
    for _ in range(20):
        response = client.get(CUSTOMERS)
        assert response.status == 200
        pids.add(response.pid)
    return pids


def assert_next_requests_succeed(console, client, daemons, apache):
    for path in [CUSTOMERS, "/users/auth/user/", "/legacy/", "/", CUSTOMERS + "?q=example"] * 4:
        response = client.get(path)
        assert response.status == 200, (path, response.status, console.server.log_tail())
    assert console.server.process.poll() is None and console.server.process.pid == apache
    assert set(console.server.daemon_pids()) == daemons, "the daemon processes were restarted"
    # A fresh login writes a session: the console's database takes writes again.
    assert console.admin().get("/customers/").status == 200


def test_requests_after_the_server_drops_the_daemons_connections_succeed(console):
    """What a restart does to the daemons, without taking MariaDB from other clients: kill their connections."""
    client = console.admin()
    warm(console, client)
    daemons, apache = set(console.server.daemon_pids()), console.server.process.pid
    ours = set(console.databases.values())
    rows = console.db.query(None, "SELECT ID, DB FROM information_schema.PROCESSLIST WHERE ID != CONNECTION_ID()")
    victims = [pid for pid, db in rows if db in ours]
    assert victims, "the daemons keep no connections (CONN_MAX_AGE)"
    for pid in victims:
        console.db.query(None, f"KILL CONNECTION {int(pid)}")
    assert_next_requests_succeed(console, client, daemons, apache)


def test_requests_after_a_mariadb_restart_succeed_without_restarting_apache(console):
    if os.geteuid() != 0 or not shutil.which("mysqladmin") or not os.path.exists("/usr/sbin/mariadbd"):
        missing("restarting MariaDB needs root and the local mariadb-server")
    if not mariadb_answers():
        missing("MariaDB's root login over the local socket does not answer")
    wait_for_other_clients(console)
    client = console.admin()
    warm(console, client)
    daemons, apache = set(console.server.daemon_pids()), console.server.process.pid

    console.timings["mariadb restart"] = restart_mariadb()
    connections.close_all()  # ours died with the server too
    assert_next_requests_succeed(console, client, daemons, apache)
