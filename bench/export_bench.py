"""Export speed and memory on MariaDB: raw server-side cursor vs ``stream_export`` vs stock import-export.

Usage (settings and databases as the app reads them; ``customers`` must be MySQL/MariaDB)::

    CONSOLE_DB_CUSTOMERS='mysql://127.0.0.1:3306/console_bench?read_default_file=/path/to/client.cnf' \\
    CONSOLE_VAR_DIR=/tmp/console-bench DJANGO_SETTINGS_MODULE=console.settings \\
        .venv/bin/python bench/export_bench.py --rows 100000,1000000

The customers table is migrated and, when empty, filled with
``load_demo_data --customers <largest N>`` (minutes for a million).  Then,
for each N, each measurement runs in a fresh process (so peak RSS is its
own) and writes the first N customers (newest first, as the admin lists
them) to a CSV file:

- raw: PyMySQL ``SSCursor`` ``SELECT`` of the table's columns, ``csv.writer`` (the baseline);
- stream: ``stream_export`` of the Customer resource limited to the same columns;
- stream+m2m: ``stream_export`` of the full resource (plus the ``tags`` column, one query per chunk);
- stock: django-import-export ``resource.export()`` + ``CSV().export_data()``, the whole
  Dataset in memory; only for N <= ``--stock-max`` (default 100,000).

It prints rows/s, seconds and peak RSS, the ratio to raw (target >= 0.5) and
how peak RSS changes from the smallest to the largest N (target: flat).  A
first, unmeasured raw pass warms the server's caches for everyone.  Wall
times vary with the machine's load: run it on an otherwise idle machine.
"""

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALIAS = "customers"
MEASURES = {
    "raw": "raw SSCursor + csv (baseline)",
    "stream": "stream_export, same columns",
    "stream+m2m": "stream_export, full resource (+tags)",
    "stock": "import-export export() (stock)",
}


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    # As in production: with DEBUG on, Django keeps the last 9,000 queries' SQL (the M2M
    # lookups' IN lists), which adds a few MB of RSS that is not the export's.
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def customer_columns():
    from console.customers.models import Customer

    return [f.name for f in Customer._meta.concrete_fields]


# One measurement, in its own process ----------------------------------------------


def measure(name, rows, out):
    setup_django()
    from django.db import connections

    from admin_site.transfers.exports import stream_export
    from admin_site.transfers.resources import resource_for
    from console.customers.models import Customer

    rss_before = peak_rss_mb()
    queryset = Customer.objects.using(ALIAS).all()[:rows]
    started = time.perf_counter()
    with open(out, "wb") as handle:
        if name == "raw":
            written = raw_export(connections[ALIAS], rows, handle)
        elif name == "stock":
            from import_export.formats.base_formats import CSV

            dataset = resource_for(Customer)(using=ALIAS).export(queryset)
            handle.write(CSV().export_data(dataset).encode("utf-8"))
            written = len(dataset)
        else:
            fields = customer_columns() if name == "stream" else None
            export = stream_export(resource_for(Customer, fields=fields)(using=ALIAS), queryset, "csv")
            for chunk in export.chunks:
                handle.write(chunk)
            written = export.rows
    seconds = time.perf_counter() - started
    result = {
        "name": name,
        "rows": written,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
        "bytes": os.path.getsize(out),
    }
    print(json.dumps(result))


def raw_export(connection, rows, handle):
    """The floor: the same columns through PyMySQL's unbuffered cursor straight into csv."""
    import pymysql

    from console.customers.models import Customer

    params = connection.get_connection_params()
    params["cursorclass"] = pymysql.cursors.SSCursor
    columns = [Customer._meta.get_field(name).column for name in customer_columns()]
    sql = f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{Customer._meta.db_table}` ORDER BY `id` DESC LIMIT %s"
    raw = pymysql.connect(**params)
    try:
        with raw.cursor() as cursor, open(handle.fileno(), "w", encoding="utf-8", newline="", closefd=False) as text:
            cursor.execute(sql, [rows])
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(customer_columns())
            count = 0
            while batch := cursor.fetchmany(1000):
                writer.writerows(batch)
                count += len(batch)
            return count
    finally:
        raw.close()


# The run ---------------------------------------------------------------------------


def ensure_rows(count):
    """Migrate the customers database and load demo customers when it has none."""
    setup_django()
    from django.core.management import call_command
    from django.db import connections

    from console.customers.models import Customer

    if connections[ALIAS].vendor != "mysql":
        sys.exit(f"The '{ALIAS}' database is {connections[ALIAS].vendor}: set CONSOLE_DB_CUSTOMERS to a MariaDB URL.")
    call_command("migrate", database=ALIAS, verbosity=0)
    have = Customer.objects.using(ALIAS).count()
    if have >= count:
        return have
    if have:
        sys.exit(
            f"'{ALIAS}' has {have:,} customers, fewer than {count:,}: empty its tables (or use a fresh database) "
            "so load_demo_data can fill it."
        )
    print(f"Loading {count:,} demo customers into '{ALIAS}' (load_demo_data)...", flush=True)
    call_command("load_demo_data", customers=count, users=0, legacy=0, verbosity=1)
    return Customer.objects.using(ALIAS).count()


def run_measure(name, rows, scratch):
    out = Path(scratch) / f"{name}-{rows}.csv"
    command = [sys.executable, __file__, "--measure", name, "--rows", str(rows), "--out", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode:
        sys.exit(f"{name} at {rows:,} rows failed:\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    out.unlink(missing_ok=True)
    return result


def print_table(results):
    print()
    print(f"{'rows':>10}  {'measurement':<38} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9} {'vs raw':>7}")
    for rows, by_name in results.items():
        raw = by_name["raw"]
        for name, label in MEASURES.items():
            result = by_name.get(name)
            if result is None:
                continue
            rate = result["rows"] / result["seconds"]
            ratio = rate / (raw["rows"] / raw["seconds"])
            print(
                f"{rows:>10,}  {label:<38} {result['seconds']:>8.2f} {rate:>10,.0f} "
                f"{result['peak_rss_mb']:>6.0f} MB {ratio:>7.2f}"
            )
    sizes = sorted(results)
    print()
    for name in ("stream", "stream+m2m"):
        ratios = ", ".join(
            f"{rate_ratio(results[n], name):.2f} at {n:,}" for n in sizes if name in results[n] and "raw" in results[n]
        )
        print(f"{MEASURES[name]}: {ratios} of raw rows/s (target >= 0.50)")
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        for name in ("raw", "stream", "stream+m2m"):
            a, b = results[small][name]["peak_rss_mb"], results[large][name]["peak_rss_mb"]
            print(f"{MEASURES[name]}: peak RSS {a:.0f} MB at {small:,} rows, {b:.0f} MB at {large:,} ({b - a:+.0f} MB)")


def rate_ratio(by_name, name):
    return (by_name[name]["rows"] / by_name[name]["seconds"]) / (by_name["raw"]["rows"] / by_name["raw"]["seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000", help="Comma-separated row counts. 100000,1000000.")
    parser.add_argument("--stock-max", type=int, default=100_000, help="Largest N for the stock export. 100000.")
    parser.add_argument("--measure", choices=list(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = sorted(int(n.replace("_", "")) for n in args.rows.split(","))
    if args.measure:
        measure(args.measure, sizes[0], args.out)
        return
    have = ensure_rows(sizes[-1])
    from django.db import connections

    server = connections[ALIAS]
    print(
        f"Export of customers.Customer to CSV from '{ALIAS}' ({server.display_name} "
        f"{'.'.join(map(str, server.mysql_version))}, database {server.settings_dict['NAME']}, {have:,} customers)"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="export-bench-") as scratch:
        # One unmeasured pass, so the first measurement does not pay for a cold buffer pool alone.
        print(f"  warm-up: raw at {sizes[-1]:,} rows...", file=sys.stderr, flush=True)
        run_measure("raw", sizes[-1], scratch)
        for rows in sizes:
            results[rows] = {}
            for name in MEASURES:
                if name == "stock" and rows > args.stock_max:
                    continue
                print(f"  {name} at {rows:,} rows...", file=sys.stderr, flush=True)
                results[rows][name] = run_measure(name, rows, scratch)
    print_table(results)


if __name__ == "__main__":
    main()
