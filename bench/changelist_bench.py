"""Changelist speed on big tables: a stock ModelAdmin against the console's panel, side by side.

Usage (MariaDB; the script creates and seeds its own scratch databases, named
``console_bench_cl_<rows>``, and reuses them on later runs)::

    eval "$(tests/mariadb.sh)"       # or: export CONSOLE_BENCH_DB_URL='mysql://127.0.0.1:3306/?read_default_file=...'
    .venv/bin/python bench/changelist_bench.py --rows 1000000 --scale 10000,10000000 [--reseed] [--http]

One run measures, on the same seeded customers table, the same model registered
on a plain stock ``ModelAdmin`` (the documented multi-database pattern, the
baseline) and on the console's customers panel: changelist page 1, page 5,000,
a search and a filter, in-process through the test client (median and p90
latency, SQL statements and their time).  ``--scale`` re-runs the panel's page 1
on other table sizes (each in a child process with its own database) to show
that it does not grow with the table.  ``--http`` adds requests/s under load
over HTTP when a server harness is available (see ``http_section``).
"""

import argparse
import html
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The word searched for: a last name, on about 1 customer in 88 (name and email).
SEARCH_TERM = "Lindqvist"
#: A person searched for by first and last name: about 1 customer in 9,000.
PERSON = "Maya Lindqvist"
#: The filter measured: a choices field with an index, about 20% of the rows.
FILTER = {"status__exact": "suspended"}
#: A filter across a relation (the address's city, about 1 customer in 30): Django's all-values filter.
CITY_FILTER = {"addresses__city": "Lyon"}
DEEP_PAGE = 5000


# -- databases and seeding ------------------------------------------------------


def server_url():
    url = os.environ.get("CONSOLE_BENCH_DB_URL") or os.environ.get("CONSOLE_TEST_DATABASE_URL")
    if not url or not url.startswith("mysql"):
        sys.exit('set CONSOLE_BENCH_DB_URL or CONSOLE_TEST_DATABASE_URL (eval "$(tests/mariadb.sh)")')
    return os.path.expanduser(url)


def database_url(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def raw_connection(url, database=None):
    import pymysql

    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        database=database,
        read_default_file=options.get("read_default_file"),
        charset="utf8mb4",
        autocommit=True,
    )


def ensure_database(url, name, reseed):
    connection = raw_connection(url)
    with connection.cursor() as cursor:
        if reseed:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    connection.close()


def setup_django(url, name):
    os.environ["CONSOLE_DB_CUSTOMERS"] = database_url(url, name)
    var_dir = Path(tempfile.gettempdir()) / f"console-bench-cl-{name}"
    os.environ["CONSOLE_VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
    os.environ["DJANGO_DEBUG"] = "0"  # as in production: no query log
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_all", verbosity=0)


def seeded_rows(cursor):
    cursor.execute("CREATE TABLE IF NOT EXISTS bench_seeded (customers BIGINT NOT NULL, seconds DOUBLE NOT NULL)")
    cursor.execute("SELECT customers, seconds FROM bench_seeded")
    return cursor.fetchone()


_KEY = re.compile(r"^\s*((?:UNIQUE |FULLTEXT )?KEY `(\w+)` \(.*\))(?: COMMENT .*)?,?$")


def secondary_keys(cursor, table):
    """The secondary index definitions of ``table`` (SHOW CREATE TABLE), but those a foreign key needs."""
    cursor.execute(f"SHOW CREATE TABLE `{table}`")
    keys = []
    for line in cursor.fetchone()[1].splitlines():
        match = _KEY.match(line)
        if match and "_id`" not in match[1].split("(", 1)[1]:
            keys.append((match[2], match[1]))
    return keys


def customer_rows(start, stop, total, rng):
    from console.demo.generate import COUNTRIES, EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES

    countries = list(COUNTRIES)
    weights = [COUNTRIES[c][0] for c in countries]
    cities = {c: COUNTRIES[c][4] for c in countries}
    began = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=3 * 365)
    step = 3 * 365 * 86400 / max(total, 1)
    customers, addresses = [], []
    for i in range(start, stop):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country = rng.choices(countries, weights)[0]
        created = (began + timedelta(seconds=i * step)).strftime("%Y-%m-%d %H:%M:%S")
        status = rng.choices(("lead", "active", "suspended", "closed"), (30, 40, 20, 10))[0]
        tier = rng.choices(("standard", "silver", "gold", "vip"), (60, 20, 15, 5))[0]
        email = f"{first}.{last}.{i}@{rng.choice(EMAIL_DOMAINS)}".lower()
        value = f"{rng.randint(0, 500000) / 100:.2f}"
        name = f"{first} {last}"
        row = (i, created, created, name, email, "", country, status, tier, "", uuid.uuid4().hex, 0, value, 0)
        customers.append(row)
        city = rng.choice(cities[country])
        addresses.append((i, created, created, i, "billing", f"{i % 200 + 1} Main Street", "", city, "10115", country))
    return customers, addresses


CUSTOMER_SQL = (
    "INSERT INTO customers_customer (id, created_at, updated_at, name, email, phone, country, status, tier, notes, "
    "reference, order_count, lifetime_value, contact_count) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
ADDRESS_SQL = (
    "INSERT INTO customers_address (id, created_at, updated_at, customer_id, kind, line1, line2, city, postcode, "
    "country) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)


def seed(url, name, rows):
    """Customers (one address each) with raw multi-row INSERTs, secondary indexes built once at the end."""
    connection = raw_connection(url, name)
    with connection.cursor() as cursor:
        done = seeded_rows(cursor)
        if done and done[0] == rows:
            connection.close()
            return None
        started = time.perf_counter()
        cursor.execute("SET unique_checks=0, foreign_key_checks=0")
        dropped = {}
        for table in ("customers_customer", "customers_address"):
            cursor.execute(f"DELETE FROM {table}") if table == "customers_address" else None
            keys = secondary_keys(cursor, table)
            dropped[table] = keys
            if keys:
                cursor.execute(f"ALTER TABLE {table} " + ", ".join(f"DROP INDEX `{k}`" for k, _ in keys))
        cursor.execute("DELETE FROM customers_customer_tags")
        cursor.execute("DELETE FROM customers_customer")
        rng = random.Random(5)
        batch = 20_000
        connection.autocommit(False)
        for begin in range(1, rows + 1, batch):
            customers, addresses = customer_rows(begin, min(begin + batch, rows + 1), rows, rng)
            cursor.executemany(CUSTOMER_SQL, customers)
            cursor.executemany(ADDRESS_SQL, addresses)
            connection.commit()
            if begin // batch % 25 == 0:
                print(f"  seeded {begin + len(customers) - 1:,} / {rows:,} ({time.perf_counter() - started:.0f} s)")
        connection.autocommit(True)
        loaded = time.perf_counter() - started
        for table, keys in dropped.items():
            plain = [definition for _, definition in keys if not definition.startswith("FULLTEXT")]
            fulltext = [definition for _, definition in keys if definition.startswith("FULLTEXT")]
            if plain:
                cursor.execute(f"ALTER TABLE {table} " + ", ".join(f"ADD {d}" for d in plain))
            for definition in fulltext:
                cursor.execute(f"ALTER TABLE {table} ADD {definition}")
        cursor.execute("ANALYZE TABLE customers_customer, customers_address")
        cursor.fetchall()
        seconds = time.perf_counter() - started
        cursor.execute("DELETE FROM bench_seeded")
        cursor.execute("INSERT INTO bench_seeded VALUES (%s, %s)", [rows, seconds])
    connection.close()
    return loaded, seconds


# -- the two admins ---------------------------------------------------------------


def logged_in_client():
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = "bench.changelist_site"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    clear_url_caches()
    user = User.objects.db_manager("users").filter(username="bench").first()
    if user is None:
        user = User.objects.db_manager("users").create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    return client


def measure(client, url, runs):
    """Median and p90 latency of GET ``url`` (after one warm-up), then its SQL on the customers database."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connections["customers"]) as log:
        client.get(url)
    times.sort()
    return {
        "median": statistics.median(times),
        "p90": times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))],
        "queries": len(log.captured_queries),
        "sql": sum(float(q["time"]) for q in log.captured_queries),
        "body": response.content.decode(),
    }


def next_link(body):
    match = re.search(r'<a href="([^"]+)" class="next-page"', body)
    return html.unescape(match[1]) if match else None


def number_link(body, number):
    """The numbered link to page ``number`` under the list."""
    match = re.search(rf'<a href="([^"]+)"(?: class="end")?>{number}</a>', body.split('class="paginator"')[-1])
    return html.unescape(match[1]) if match else None


def scenarios(client):
    """(name, stock url, console url): page 5,000 by number, and as the list's own links reach it."""
    stock, ours = "/stock/customers/customer/", "/customers/customers/customer/"
    search = "?" + urlencode({"q": SEARCH_TERM})
    query = {
        "page 1": "",
        f"page {DEEP_PAGE:,}": f"?p={DEEP_PAGE}",
        f"search '{SEARCH_TERM}'": search,
        f"search '{PERSON}'": "?" + urlencode({"q": PERSON}),
        "filter " + ",".join(f"{k}={v}" for k, v in FILTER.items()): "?" + urlencode(FILTER),
        "filter " + ",".join(f"{k}={v}" for k, v in CITY_FILTER.items()): "?" + urlencode(CITY_FILTER),
    }
    rows = [(name, stock + q, ours + q) for name, q in query.items()]
    deep = client.get(ours + f"?p={DEEP_PAGE}").content.decode()
    link = next_link(client.get(ours + f"?p={DEEP_PAGE - 1}").content.decode())
    numbered = number_link(deep, DEEP_PAGE + 2)
    if link is None or numbered is None:  # a table too small for that page
        return rows[:1] + rows[2:]
    rows.insert(2, (f"page {DEEP_PAGE:,} via Next", stock + f"?p={DEEP_PAGE}", ours + link))
    rows.insert(3, (f"page {DEEP_PAGE + 2:,} via its number", stock + f"?p={DEEP_PAGE + 2}", ours + numbered))
    return rows


TARGETS = {"page": 20, "search": 40, "filter": 20}


def target_for(name):
    return next((ratio for prefix, ratio in TARGETS.items() if name.startswith(prefix)), None)


def compare(client, paths, runs, stock_runs):
    print(f"{'changelist':34} {'':6} {'median ms':>10} {'p90 ms':>9} {'SQL':>4} {'SQL ms':>8}  ratio (target)")
    stock_medians = {}
    for name, stock_url, our_url in paths:
        if stock_url not in stock_medians:
            stock_medians[stock_url] = measure(client, stock_url, stock_runs)
        stock = stock_medians[stock_url]
        ours = measure(client, our_url, runs)
        ratio = stock["median"] / ours["median"]
        target = target_for(name)
        verdict = "" if target is None else f"  (>= {target}x: {'met' if ratio >= target else 'NOT met'})"
        for label, m in (("stock", stock), ("ours", ours)):
            print(
                f"{name if label == 'stock' else '':34} {label:6} {m['median'] * 1000:10.1f} {m['p90'] * 1000:9.1f} "
                f"{m['queries']:4d} {m['sql'] * 1000:8.1f}" + (f"  {ratio:.1f}x{verdict}" if label == "ours" else "")
            )
        count = re.search(r'<span class="row-count" data-count-kind="[^"]+">([^<]+)</span>', ours["body"])
        print(f"{'':34} shown: {count[1].strip() if count else '-'}")


def page1(client, runs):
    return measure(client, "/customers/customers/customer/", runs)["median"]


def offset_floor(url, name, runs=11):
    """Median seconds of the bare OFFSET a numbered page ``DEEP_PAGE`` costs (raw SQL, key only)."""
    connection = raw_connection(url, name)
    sql = f"SELECT id FROM customers_customer ORDER BY id DESC LIMIT 51 OFFSET {(DEEP_PAGE - 1) * 50}"
    times = []
    with connection.cursor() as cursor:
        for _ in range(runs + 1):
            started = time.perf_counter()
            cursor.execute(sql)
            cursor.fetchall()
            times.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(times[1:])


def wrk(url, cookie, seconds, concurrency):
    """requests/s, p50 and p99 (seconds) and non-2xx count of ``url`` under ``wrk`` with ``concurrency`` connections."""
    result = subprocess.run(
        [
            "wrk",
            f"-t{min(concurrency, 2)}",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "60s",
            "-H",
            f"Cookie: {cookie}",
            url,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout

    def latency(percentile):
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]

    if re.search(r"^\s+0 requests in", out, re.M):
        return 0.0, float(seconds), float(seconds), 0  # nothing finished: every request took longer than the run
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, latency(50), latency(99), int(errors[1]) if errors else 0


def wait_idle(url, name, timeout=300):
    """Wait until no statement runs on database ``name``: a slow run's requests outlive wrk's duration."""
    connection = raw_connection(url)
    deadline = time.monotonic() + timeout
    try:
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                    "WHERE DB = %s AND COMMAND = 'Query' AND ID <> CONNECTION_ID()",
                    [name],
                )
                if not cursor.fetchone()[0]:
                    return
                time.sleep(0.5)
    finally:
        connection.close()


def http_section(base_url, cookie, paths, seconds=15, concurrency=8, idle=lambda: None):
    """Requests/s and p50/p99 of each (name, path) over HTTP, ``concurrency`` connections for ``seconds`` each.

    ``base_url`` serves ``bench.changelist_site`` on the seeded database;
    ``cookie`` is a logged-in session's Cookie header.
    """
    print(f"HTTP, mod_wsgi-express daemon mode, wrk -c{concurrency} for {seconds} s each")
    print(f"{'path':34} {'':6} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>6}  ratio")
    results = {}
    for name, stock_path, our_path in paths:
        row = {}
        for label, path in (("stock", stock_path), ("ours", our_path)):
            if path is None:
                continue
            row[label] = wrk(base_url + path, cookie, seconds, concurrency)
            idle()
            rate, p50, p99, errors = row[label]
            stock_rate = row.get("stock", (None,))[0]
            ratio = ""
            if label == "ours" and stock_rate is not None:
                # No stock request finished within the run: at most one in ``seconds``.
                ratio = f"  {rate / stock_rate:.1f}x" if stock_rate else f"  >{rate * seconds:.0f}x"
            latencies = f"{p50 * 1000:9.1f} {p99 * 1000:9.1f}" if rate else f"{'> run':>9} {'> run':>9}"
            print(f"{name if label == 'stock' or 'stock' not in row else '':34} {label:6} {rate:9.1f} "
                  f"{latencies} {errors:6d}{ratio}")  # fmt: skip
        results[name] = row
    return results


def serve_and_load(url, name, paths, seconds, concurrency):
    """Serve the bench's URLs with the e2e harness (mod_wsgi-express, daemon mode) and run ``http_section``."""
    import secrets
    import shutil

    from admin_site.express import Server, prepare_runtime, trusted_cache
    from tests.e2e.client import Client

    work = Path(tempfile.mkdtemp(prefix="bench-cl-", dir=trusted_cache() if os.geteuid() == 0 else None))
    os.chmod(work, 0o755)
    server = None
    try:
        runtime = prepare_runtime(work)
        option_file = work / "mariadb.cnf"
        shutil.copyfile(dict(parse_qsl(urlsplit(url).query))["read_default_file"], option_file)
        runtime.give(option_file, 0o600)
        for directory in ("var", "imports"):
            (work / directory).mkdir()
            runtime.give(work / directory, 0o700)
        databases = {"users": f"{name}_users", "customers": name, "legacy": f"{name}_legacy"}
        for database in databases.values():
            ensure_database(url, database, reseed=False)
        parts = urlsplit(url)
        password = secrets.token_urlsafe(12)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "bench.changelist_settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "CONSOLE_VAR_DIR": str(work / "var"),
            "CONSOLE_IMPORT_DIR": str(work / "imports"),
            "CONSOLE_STATIC_ROOT": str(work / "static"),
            **{
                f"CONSOLE_DB_{alias.upper()}": f"mysql://{parts.hostname}:{parts.port or 3306}/{database}"
                f"?read_default_file={option_file}"
                for alias, database in databases.items()
            },
        }
        runtime.manage("migrate_all", "--verbosity", "0", env=env)
        create = (
            "from django.contrib.auth.models import User; import os; "
            "User.objects.db_manager('users').filter(username='bench').delete(); "
            "User.objects.db_manager('users').create_superuser('bench', 'b@example.com', os.environ['BENCH_PW'])"
        )
        runtime.manage("shell", "-c", create, env={**env, "BENCH_PW": password})
        runtime.manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
        log = open(work / "server.log", "a")  # noqa: SIM115 - closed with the work directory
        server = Server(runtime, work / "server", env=env, processes=2, threads=4, log=log)
        server.start()
        server.wait_ready()
        client = Client(server.url)
        assert client.login("users", "bench", password).status == 302
        cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies)
        return http_section(server.url, cookie, paths, seconds, concurrency, idle=lambda: wait_idle(url, name))
    finally:
        if server is not None:
            server.stop()
        if (work / "server.log").exists():
            shutil.copyfile(work / "server.log", Path(tempfile.gettempdir()) / "changelist-bench-server.log")
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20, help="timed requests per console URL")
    parser.add_argument("--stock-runs", type=int, default=5, help="timed requests per stock URL")
    parser.add_argument("--scale", default="", help="other table sizes for the page-1 check, e.g. 10000,10000000")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--http", action="store_true", help="also measure over HTTP under mod_wsgi-express + wrk")
    parser.add_argument("--http-seconds", type=int, default=15)
    parser.add_argument("--skip-inprocess", action="store_true", help="only the HTTP section")
    parser.add_argument("--page1-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = server_url()
    name = f"console_bench_cl_{args.rows}"
    ensure_database(url, name, args.reseed)
    setup_django(url, name)
    if args.page1_json:
        connection = raw_connection(url, name)
        with connection.cursor() as cursor:
            done = seeded_rows(cursor)
        print(json.dumps({"rows": args.rows, "page1": page1(logged_in_client(), args.runs) if done else None}))
        return
    seeded = seed(url, name, args.rows)
    if seeded:
        print(f"seeded {args.rows:,} customers + addresses: rows {seeded[0]:.0f} s, with indexes {seeded[1]:.0f} s")
    if args.seed_only:
        return
    connection = raw_connection(url, name)
    with connection.cursor() as cursor:
        print(f"{args.rows:,} customers (seeded in {seeded_rows(cursor)[1]:.0f} s), MariaDB, in-process test client")
        cursor.execute(
            "SELECT @@version, @@innodb_buffer_pool_size, SUM(data_length + index_length) "
            "FROM information_schema.TABLES WHERE table_schema = DATABASE()"
        )
        version, pool, size = cursor.fetchone()
        # Both admins read from disk when the tables do not fit: say which case this run is.
        print(f"MariaDB {version}: InnoDB buffer pool {pool / 2**20:,.0f} MiB, this database {size / 2**20:,.0f} MiB")
    client = logged_in_client()
    paths = scenarios(client)
    if not args.skip_inprocess:
        compare(client, paths, args.runs, args.stock_runs)
        if any(name == f"page {DEEP_PAGE:,}" for name, *_ in paths):
            print(f"(page {DEEP_PAGE:,} by number alone: InnoDB reads the {(DEEP_PAGE - 1) * 50:,} keys an OFFSET "
                  f"skips, {offset_floor(url, name) * 1000:.1f} ms in raw SQL)")  # fmt: skip
    ours = page1(client, args.runs)
    sizes = [int(size) for size in args.scale.split(",") if size and not args.skip_inprocess]
    for size in sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--rows", str(size), "--runs", str(args.runs), "--page1-json"],
            capture_output=True,
            text=True,
            check=True,
        )
        other = json.loads(child.stdout.strip().splitlines()[-1])["page1"]
        if other is None:
            print(f"page 1 at {size:,} rows: not seeded (run with --rows {size} --seed-only first)")
        else:
            print(f"page 1 at {size:,} rows: {other * 1000:.1f} ms; at {args.rows:,}: {ours * 1000:.1f} ms")
    if sizes:
        print("(target: page 1 at 10,000,000 rows within 1.5x of page 1 at 10,000 rows)")
    if args.http:
        trivial = [("trivial view (ceiling)", None, "/bench/trivial/")]
        results = serve_and_load(url, name, trivial + paths, args.http_seconds, concurrency=8)
        page_1 = results["page 1"]
        print(f"HTTP page 1 throughput: {page_1['ours'][0] / page_1['stock'][0]:.1f}x stock (target >= 25x); "
              f"trivial view {results['trivial view (ceiling)']['ours'][0]:.0f} req/s")  # fmt: skip


if __name__ == "__main__":
    main()
