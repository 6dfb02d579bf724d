"""Load and fault bench: the console under mod_wsgi-express (daemon mode, 2 processes x 4 threads) through faults.

Usage (Apache's development files and mariadb-server's programs installed; no running MariaDB is used)::

    .venv/bin/python bench/fault_bench.py            # about 5 minutes (60 s of load per scenario)
    .venv/bin/python bench/fault_bench.py --short    # about 2 minutes (CI)

Every database of the served console lives on a throwaway MariaDB server of the
bench's own (``tests.test_outages.SecondServer``: its own port, data directory
and process, root without grants), the only server it restarts.  The server is
set up as the e2e tests set theirs up (``tests/e2e/conftest.py``): ``migrate_all``,
the legacy schema, ``load_demo_data``, their superuser, ``prepare_runtime`` and
``Server``.  Scenarios, each bounded in time:

1. load: 50 logged-in sessions, each on its own keep-alive connection, browse
   changelists, searches and filters, and append a token to their own
   customer's notes through the change form; one session exports the whole
   list (CSV, every field) over and over;
2. daemon kill: the same, and a third of the way in SIGKILL to a daemon (one
   serving an export, if any);
3. connection kill during an import: a web import (preview, then confirm) while
   another thread ``KILL CONNECTION``s the connection writing its rows: the
   import must fail naming the database, and write nothing;
4. database restart: the load, and the MariaDB server stopped and started;
5. exports during faults: an export killed mid-stream by each fault in turn (daemon
   kill, connection kill, database restart), then one that must be complete.

Per scenario it prints requests, errors by status, p50/p95/p99; POSTs
acknowledged (302) against tokens found in the database; downloads cut off and
detected (``IncompleteRead``) against downloads that end cleanly but hold fewer
rows than the table; and 5xx answers to requests started after the fault ended
plus a grace period.  Goals: 0 acknowledged writes lost, 0 cut-off downloads
that look complete, 0 5xx after recovery, every killed import failed and named
the database.  Exits 1 when one is missed.  The server's log is kept in
``test-artifacts/fault-bench-server.log``.
"""

import argparse
import csv
import html
import http.client
import io
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from admin_site.express import Server, prepare_runtime, trusted_cache  # noqa: E402
from tests.e2e.client import Response, _multipart  # noqa: E402
from tests.e2e.conftest import PANELS, SEED_USERS  # noqa: E402

CUSTOMERS = "/customers/customers/customer/"
PAGES = ["/", "/legacy/", CUSTOMERS, *(f"{CUSTOMERS}?{q}" for q in ("q=Lindqvist", "status__exact=active", "p=2"))]
SESSIONS, GRACE, DOWN_SECONDS = 50, 3.0, 2.0
INSERTING, STREAMING = "INSERT INTO `customers_customer`%", "SELECT%customers_customer%"
RUNNING = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND COMMAND = 'Query' AND INFO LIKE %s"
LAST_RECORD = (
    "SELECT outcome, rows_total, rows_new FROM admin_site_transferrecord WHERE kind = %s ORDER BY id DESC LIMIT 1"
)
PLANS = {  # seconds of load (without, with a fault), demo customers, rows per import, rounds of imports and faults
    "short": dict(load=10, fault=15, customers=20_000, import_rows=5_000, rounds=1),
    "full": dict(load=60, fault=60, customers=60_000, import_rows=20_000, rounds=3),
}


class Bench:
    """The served console, its MariaDB server, and the sessions the scenarios share."""

    def __init__(self, work, plan):
        from tests.test_outages import SecondServer, mariadb_programs

        self.work, self.plan, self.password = work, plan, secrets.token_urlsafe(12)
        self.server = self.log = None
        (work / "mariadb").mkdir()
        self.db = SecondServer(*mariadb_programs(), work / "mariadb")
        self.names = {alias: f"console_fault_{alias}" for alias in PANELS}

    def setup(self):
        """The e2e set-up (``tests/e2e/conftest.py``), every alias on the bench's own MariaDB server."""
        work, started = self.work, time.monotonic()
        self.start_db()
        for name in self.names.values():
            self.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        runtime = prepare_runtime(work)
        for name in ("var", "imports"):
            (work / name).mkdir()
            runtime.give(work / name, 0o700)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "tests.e2e.server_settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "CONSOLE_VAR_DIR": str(work / "var"),
            "CONSOLE_IMPORT_DIR": str(work / "imports"),
            "CONSOLE_STATIC_ROOT": str(work / "static"),
            **{f"CONSOLE_DB_{a.upper()}": f"mysql://root@127.0.0.1:{self.db.port}/{n}" for a, n in self.names.items()},
        }
        runtime.manage("migrate_all", "--verbosity", "0", env=env)
        runtime.manage("create_legacy_schema", "--database", "legacy", "--verbosity", "0", env=env)
        demo = ["--customers", str(self.plan["customers"]), "--users", "0", "--legacy", "20"]
        runtime.manage("load_demo_data", *demo, env=env)
        runtime.manage("shell", "-c", SEED_USERS, env={**env, "E2E_PASSWORD": self.password})
        runtime.manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
        self.log = open(work / "server.log", "a")  # noqa: SIM115 - closed in close()
        self.server = Server(runtime, work / "server", env=env, processes=2, threads=4, log=self.log)
        self.server.start()
        self.server.wait_ready()
        ids = self.sql("SELECT id FROM customers_customer ORDER BY id LIMIT %s", SESSIONS, alias="customers")
        self.customer_ids = [i for (i,) in ids]
        with ThreadPoolExecutor(4) as pool:  # a login costs a password hash: about 0.5 s of CPU
            self.exporter, *self.sessions = pool.map(lambda _: self.session([]), range(SESSIONS + 1))
        print(f"set-up: {time.monotonic() - started:.0f} s, {self.plan['customers']:,} demo customers, ", end="")
        print(f"{SESSIONS + 1} sessions logged in, MariaDB on port {self.db.port}")

    def start_db(self):
        self.db.start()
        self.sql("SET GLOBAL innodb_buffer_pool_size = 536870912")  # SecondServer starts with 16 MB

    def sql(self, query, *args, alias=None):
        database = self.names[alias] if alias else None
        with pymysql.connect(host="127.0.0.1", port=self.db.port, user="root", database=database) as connection:
            with connection.cursor() as cursor:
                cursor.execute(query, args or None)
                return cursor.fetchall()

    def count(self, query="SELECT COUNT(*) FROM customers_customer", *args):
        return self.sql(query, *args, alias="customers")[0][0]

    def session(self, samples):
        session = Session(self.server.host, self.server.port, samples)
        page = session.request("GET", "/users/login/")
        fields = {**page.form(), "username": "e2e-admin", "password": self.password, "next": "/users/"}
        assert session.request("POST", "/users/login/", fields).status == 302, "login failed"
        return session

    def log_lines(self):
        return Path(self.log.name).read_text(errors="replace").splitlines() if self.log else []

    def close(self):
        for step in (self.server and self.server.stop, self.log and self.log.close, self.db.stop):
            try:
                step and step()
            except Exception as error:  # keep stopping the rest
                print(f"stopping: {error}")
        if self.log is not None:
            (ROOT / "test-artifacts").mkdir(exist_ok=True)
            shutil.copyfile(self.log.name, ROOT / "test-artifacts" / "fault-bench-server.log")


class Session:
    """One browser: a keep-alive connection and its cookies; every request is timed into ``samples``."""

    def __init__(self, host, port, samples):
        self.connection = http.client.HTTPConnection(host, port, timeout=120)
        self.cookies, self.samples = {}, samples

    def send(self, method, path, fields=None, files=None):
        """Send a request; returns the response with its body unread (raises on a connection error)."""
        headers, body = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}, None
        if files:
            body, headers["Content-Type"] = _multipart(fields, files)
        elif fields is not None:
            body = urllib.parse.urlencode(fields, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if method == "POST":
            headers["Referer"] = f"http://{self.connection.host}:{self.connection.port}{path}"
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.update({name: morsel.value for name, morsel in SimpleCookie(header).items()})
        return response

    def request(self, method, path, fields=None, files=None):
        """One whole request: a ``tests.e2e.client.Response``, or None after a connection error."""
        started = time.monotonic()
        try:
            answer = self.send(method, path, fields, files)
            response = Response(answer.status, answer.headers, answer.read())
        except (http.client.HTTPException, OSError) as error:
            self.connection.close()
            self.samples.append((f"{method} {path}", started, time.monotonic() - started, type(error).__name__))
            return None
        self.samples.append((f"{method} {path}", started, time.monotonic() - started, response.status))
        return response


def browse(session, customer_id, tag, stop, posts):
    """Pages, then an edit of the session's own customer through its change form: a token appended to the notes."""
    change = f"{CUSTOMERS}{customer_id}/change/"
    for n in range(1_000_000):
        if stop.is_set():
            return
        page = session.request("GET", random.choice(PAGES))
        if page is not None and page.status == 200:
            page = session.request("GET", change)
        if page is None or page.status != 200:
            time.sleep(0.2)  # a person reads the error page before trying again
            continue
        fields = {**page.form("customer_form"), "_save": "Save"}
        fields["notes"] = f"{fields.get('notes', '')} [{tag}-{n}]".strip()
        answer = session.request("POST", change, fields)
        posts.append((f"{tag}-{n}", answer is not None and answer.status == 302))


def export(session, expected, inflight=None, fault=None):
    """POST the export form (CSV, every field), run ``fault`` after the first 256 KB, read the rest.

    Returns ``complete``, ``detected`` (cut off, and the client can tell), ``short`` (ended
    cleanly with fewer rows than the table: must never happen) or what went wrong instead.
    """
    form = session.request("GET", CUSTOMERS + "export/")
    if form is None or form.status != 200:
        return f"form {form.status if form else 'error'}"
    fields = {**form.form(), "format": form.option("format", "csv")}
    started, body, inflight = time.monotonic(), [], {} if inflight is None else inflight
    try:
        response = session.send("POST", CUSTOMERS + "export/", fields)
        if response.status != 200:
            response.read()
            session.samples.append(("export", started, time.monotonic() - started, response.status))
            return f"status {response.status}"
        inflight[threading.get_ident()] = int(response.headers["X-Console-Pid"])
        body.append(response.read(256 * 1024))
        if fault is not None:
            fault(inflight)
        while chunk := response.read(64 * 1024):
            body.append(chunk)
    except (http.client.HTTPException, OSError) as error:
        session.connection.close()
        session.samples.append(("export", started, time.monotonic() - started, "cut off"))
        return "detected" if body else type(error).__name__
    finally:
        inflight.pop(threading.get_ident(), None)
    session.samples.append(("export", started, time.monotonic() - started, 200))
    rows = sum(1 for _ in csv.reader(io.StringIO(b"".join(body).decode("utf-8-sig")))) - 1
    return "complete" if rows >= expected else "short"


def last_export(bench):
    outcome, rows, _new = bench.sql(LAST_RECORD, "export", alias="users")[0]
    return f"record {outcome}, {rows:,} rows"


class Scenario:
    """What one scenario saw, and its verdict."""

    def __init__(self, name):
        self.name, self.samples, self.posts, self.exports, self.notes = name, [], [], [], []
        self.tag, self.recovered, self.failures, self.began = uuid.uuid4().hex[:6], None, [], time.monotonic()

    def report(self, bench, log):
        statuses = Counter(status for _kind, _start, _elapsed, status in self.samples)
        latencies = [elapsed for _kind, _start, elapsed, status in self.samples if isinstance(status, int)]
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
        shown = ", ".join(f"{status} {count:,}" for status, count in sorted(statuses.items(), key=str))
        print(f"\n== {self.name} ==", *(f"  {note}" for note in self.notes), sep="\n")
        p50, p95, p99 = (f"{cuts[i] * 1000:,.0f}" for i in (49, 94, 98))
        print(f"  requests {len(self.samples):,} ({shown}); p50 {p50} ms, p95 {p95} ms, p99 {p99} ms")
        if self.posts:
            query = "SELECT notes FROM customers_customer WHERE notes LIKE %s"
            notes = " ".join(n for (n,) in bench.sql(query, f"%[{self.tag}%", alias="customers"))
            found, acked = set(re.findall(r"\[([\w-]+)\]", notes)), {token for token, ok in self.posts if ok}
            unacked = len({token for token, ok in self.posts if not ok} & found)
            print(f"  POSTs acknowledged (302) {len(acked):,}, found in the database {len(acked & found):,} ", end="")
            print(f"(lost {len(acked - found)}; not acknowledged but written {unacked})")
            if acked - found:
                self.failures.append(f"{len(acked - found)} acknowledged writes lost: {sorted(acked - found)[:5]}")
        if self.exports:
            outcomes = Counter(self.exports)
            other = {k: v for k, v in outcomes.items() if k not in ("complete", "detected", "short")}
            print(f"  exports: {outcomes['complete']} complete, {outcomes['detected']} cut off and detected, ", end="")
            print(f"{outcomes['short']} cut off but looking complete; other: {other or '-'}")
            if outcomes["short"]:
                self.failures.append(f"{outcomes['short']} cut-off downloads looked complete")
        after = self.recovered + GRACE if self.recovered else self.began
        failed = [(w, t, s) for w, t, _e, s in self.samples if t > after and (isinstance(s, str) or s >= 500)]
        late = Counter(s for _w, _t, s in failed)
        late_5xx = {s: n for s, n in late.items() if isinstance(s, int)}
        when = f" ({GRACE:.0f} s after the fault ended)" if self.recovered else ""
        errors = sum(late.values()) - sum(late_5xx.values())
        print(f"  5xx after recovery{when}: {sum(late_5xx.values())} {late_5xx or ''}; connection errors: {errors}")
        for what, start, status in failed[:5]:
            print(f"    {start - after:+.1f} s: {what} -> {status}")
        if late_5xx:
            self.failures.append(f"{sum(late_5xx.values())} 5xx after recovery: {late_5xx}")
        tracebacks = sum("Traceback (most recent call last)" in line for line in log)
        print(f"  server log: +{len(log):,} lines, {tracebacks} tracebacks")
        for failure in self.failures:
            print(f"  GOAL MISSED: {failure}")
        return [f"{self.name}: {failure}" for failure in self.failures]


def run_load(bench, scenario, seconds, fault=None):
    """50 sessions and one exporter for ``seconds``; ``fault`` runs a third of the way in, returns when it is over."""
    stop, inflight, expected = threading.Event(), {}, bench.count()
    for session in [*bench.sessions, bench.exporter]:
        session.samples = scenario.samples
        session.connection.close()  # idle since the last scenario: the server has closed it

    def export_loop():
        while not stop.is_set():
            scenario.exports.append(export(bench.exporter, expected, inflight))
            if scenario.exports[-1] not in ("complete", "detected", "short"):
                time.sleep(0.2)

    threads = [threading.Thread(target=export_loop)] + [
        threading.Thread(target=browse, args=(s, bench.customer_ids[i], f"{scenario.tag}{i}", stop, scenario.posts))
        for i, s in enumerate(bench.sessions)
    ]
    for thread in threads:
        thread.start()
    if fault is not None:
        time.sleep(seconds / 3)
        scenario.notes.append(f"at {time.monotonic() - scenario.began:.1f} s: {fault(bench, inflight)}")
        scenario.recovered = time.monotonic()
    time.sleep(max(0.0, scenario.began + seconds - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(180)
    scenario.notes.insert(0, f"{seconds} s, {len(bench.sessions)} keep-alive sessions and 1 exporter")


def kill_daemon(bench, inflight):
    """SIGKILL a daemon process (one streaming an export, if one comes within 5 s); returns once it is replaced."""
    deadline = time.monotonic() + 5
    while not inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = next(iter(inflight.values()), None)
    what = "streaming an export" if pid else "no export in flight"
    pid = pid or bench.server.daemon_pids()[0]
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while len(set(bench.server.daemon_pids()) - {pid}) < bench.server.processes:
        assert time.monotonic() - started < 30, "no replacement daemon after 30 s"
        time.sleep(0.05)
    return f"SIGKILL daemon {pid} ({what}); a new daemon after {time.monotonic() - started:.1f} s"


def restart_db(bench, _inflight=None):
    """Stop the MariaDB server, leave it down for ``DOWN_SECONDS``, start it; returns once it answers."""
    started = time.monotonic()
    bench.db.stop()
    time.sleep(DOWN_SECONDS)
    bench.start_db()
    return f"MariaDB stopped and started: away {time.monotonic() - started:.1f} s"


def kill_connection(bench, statement, timeout=30):
    """KILL the first connection to the customers database seen running ``statement``; seconds waited, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = bench.sql(RUNNING, bench.names["customers"], statement)
        if found:
            bench.sql(f"KILL CONNECTION {int(found[0][0])}")
            return time.monotonic() - started
        time.sleep(0.005)
    return None


def import_rounds(bench, scenario):
    """Imports whose writing connection is killed: each must fail naming the database, and write nothing."""
    session, rows = bench.session(scenario.samples), bench.plan["import_rows"]
    for round_ in range(1, bench.plan["rounds"] + 1):
        tag = uuid.uuid4().hex[:8]
        lines = [
            "name,email,country,status,tier",
            *(f"F{i},fault-{tag}-{i}@example.com,DE,lead,gold" for i in range(rows)),
        ]
        form = session.request("GET", CUSTOMERS + "import/")
        fields = {**form.form(), "format": form.option("format", "csv")}
        files = {"import_file": (f"fault-{tag}.csv", "\n".join(lines).encode() + b"\n")}
        preview = session.request("POST", CUSTOMERS + "import/", fields, files)
        assert preview is not None and preview.status == 200, f"preview: {preview and preview.status}"
        killed = []
        killer = threading.Thread(target=lambda k=killed: k.append(kill_connection(bench, INSERTING)))
        killer.start()
        confirm = session.request("POST", CUSTOMERS + "process_import/", preview.form())
        killer.join()
        page = session.request("GET", confirm.location) if confirm is not None and confirm.location else None
        named = page is not None and "The database 'customers' failed during" in html.unescape(page.text)
        written = bench.count("SELECT COUNT(*) FROM customers_customer WHERE email LIKE %s", f"fault-{tag}-%")
        outcome, _rows, new = record = bench.sql(LAST_RECORD, "import", alias="users")[0]
        when = f"killed {killed[0]:.2f} s into the confirm" if killed[0] is not None else "not caught writing"
        scenario.notes.append(
            f"import {round_} of {rows:,} rows: {when}; confirm {confirm and confirm.status}, "
            f"database named: {named}, rows written {written}, record {outcome} ({new} new)"
        )
        if killed[0] is not None and (not named or written or (outcome, new) != ("failed", 0)):
            scenario.failures.append(f"import {round_}: named {named}, written {written}, record {record}")
    scenario.recovered = time.monotonic()
    time.sleep(GRACE)
    scenario.notes.append(f"the list after the imports: {session.request('GET', CUSTOMERS).status}")


def export_faults(bench, scenario):
    """Exports cut off mid-stream by each fault in turn, then one that must be complete."""
    session, expected = bench.session(scenario.samples), bench.count()
    faults = {
        "daemon kill": kill_daemon,
        "connection kill": lambda b, _: f"streaming query killed {kill_connection(b, STREAMING):.2f} s in",
        "database restart": restart_db,
    }
    for _ in range(bench.plan["rounds"]):
        for name, fault in faults.items():
            said = []
            outcome = export(session, expected, fault=lambda inflight, f=fault, s=said: s.append(f(bench, inflight)))
            scenario.exports.append(outcome)
            time.sleep(0.5)  # the failing export's record
            scenario.notes.append(f"{name}: {outcome}, {last_export(bench)} ({said[0] if said else 'no fault'})")
            scenario.recovered = time.monotonic()
    time.sleep(GRACE)
    scenario.exports.append(outcome := export(session, expected))
    scenario.notes.append(f"after the faults: {outcome}, {last_export(bench)}")
    if outcome != "complete":
        scenario.failures.append(f"the export after the faults ended {outcome}")


SCENARIOS = [
    ("1. 50 keep-alive sessions", lambda bench, s: run_load(bench, s, bench.plan["load"])),
    ("2. daemon kill under load", lambda bench, s: run_load(bench, s, bench.plan["fault"], kill_daemon)),
    ("3. connection kill during an import", import_rounds),
    ("4. database restart under load", lambda bench, s: run_load(bench, s, bench.plan["fault"], restart_db)),
    ("5. exports during faults", export_faults),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="about 2 minutes instead of 10 (CI)")
    plan = PLANS["short" if parser.parse_args(argv).short else "full"]
    work = Path(tempfile.mkdtemp(prefix="fault-bench-", dir=trusted_cache() if os.geteuid() == 0 else None))
    os.chmod(work, 0o755)
    os.environ.update(CONSOLE_VAR_DIR=str(work / "bench-var"), DJANGO_SETTINGS_MODULE="console.settings")
    import django

    django.setup()  # tests.test_outages, home of SecondServer, imports models
    bench, failures, started = None, [], time.monotonic()
    try:
        bench = Bench(work, plan)
        bench.setup()
        for name, run in SCENARIOS:
            scenario, lines = Scenario(name), len(bench.log_lines())
            run(bench, scenario)
            failures += scenario.report(bench, bench.log_lines()[lines:])
        records = bench.sql(
            "SELECT kind, outcome, COUNT(*) FROM admin_site_transferrecord GROUP BY 1, 2", alias="users"
        )
        print("\ntransfer records: " + ", ".join(f"{k} {o} {n}" for k, o, n in records))
    finally:
        if bench is not None:
            bench.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(failures)} goal(s) missed in {time.monotonic() - started:.0f} s", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
