"""Import speed: the console's import path against raw PyMySQL executemany, side by side.

Usage (MariaDB; the database is created, migrated and emptied by the script)::

    export CONSOLE_BENCH_DB_URL='mysql://127.0.0.1:3306/console_bench?read_default_file=/path/to/client.cnf'
    .venv/bin/python bench/import_bench.py --rows 100000 --stock-rows 5000 --rounds 3

Prints, for the same generated CSV of new customers: raw ``executemany`` rows/s
(the baseline), the console's import path (file parsing, header and unique
checks, per-row validation, bulk writes) rows/s, stock django-import-export's
default row-by-row import rows/s on a smaller sample, and the ratios.  Then the
same file with a ``tags`` column (a many-to-many, as the console's own export
writes it) against the file without it: the target is at least half the speed.
Last, a file that updates ``--update-rows`` existing customers: the confirm that
checks each row against its preview (``rowstates``: rows locked, one keyed hash
a row) against the same import unchecked (the command line's path).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(url):
    os.environ["CONSOLE_DB_CUSTOMERS"] = os.path.expanduser(url)
    os.environ.setdefault("CONSOLE_VAR_DIR", tempfile.mkdtemp(prefix="console-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
    os.environ["DJANGO_DEBUG"] = "0"  # as in production: no query log
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_all", verbosity=0)


def make_csv(rows, start=0, tags=None):
    import csv
    import io

    countries = ["DE", "FR", "GB", "US", "IT", "ES", "NL", "PL", "SE", "AT"]
    statuses, tiers = ["lead", "active", "active", "suspended"], ["standard", "standard", "silver", "gold", "vip"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "email", "phone", "country", "status", "tier", "notes", *(["tags"] if tags else [])])
    for i in range(start, start + rows):
        row = [
            f"Customer {i}",
            f"customer{i}@bench.example",
            f"+49 30 {i:07d}",
            countries[i % 10],
            statuses[i % 4],
            tiers[i % 5],
            "",
        ]
        if tags:  # none, one or two tags per customer, as the demo data has them
            row.append(",".join(str(t) for t in tags[i % len(tags) : i % len(tags) + i % 3]))
        writer.writerow(row)
    return out.getvalue().encode()


def empty_customers():
    from django.db import connections

    from console.customers.models import Customer

    with connections["customers"].cursor() as cursor:
        cursor.execute("SET FOREIGN_KEY_CHECKS=0")
        for model in (Customer.tags.through, Customer):  # tags themselves are kept
            cursor.execute(f"TRUNCATE TABLE {model._meta.db_table}")
        cursor.execute("SET FOREIGN_KEY_CHECKS=1")


def bench_tags():
    """Five tags in the customers database (made once): the ids a tags column names."""
    from console.customers.models import Tag

    names = ["vip", "loyal", "churn-risk", "newsletter", "partner"]
    for name in names:
        Tag.objects.using("customers").get_or_create(name=name)
    return list(Tag.objects.using("customers").filter(name__in=names).values_list("pk", flat=True))


def raw_executemany(data):
    """Baseline: the same rows straight into the table with PyMySQL, no validation."""
    import csv
    import io
    import uuid

    from django.db import connections
    from django.utils import timezone

    rows = list(csv.reader(io.StringIO(data.decode())))[1:]
    now = timezone.now().replace(tzinfo=None)
    started = time.perf_counter()
    connection = connections["customers"]
    with connection.cursor() as cursor:
        sql = (
            "INSERT INTO customers_customer (name, email, phone, country, status, tier, notes, reference, "
            "order_count, lifetime_value, contact_count, created_at, updated_at) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"  # only %s: PyMySQL then sends multi-row INSERTs
        )
        for i in range(0, len(rows), 5000):
            batch = [(*r, uuid.uuid4().hex, 0, 0, 0, now, now) for r in rows[i : i + 5000]]
            cursor.executemany(sql, batch)
    connection.commit() if not connection.get_autocommit() else None
    return time.perf_counter() - started


def console_import(data):
    from admin_site.transfers.imports import read_dataset, run_import
    from admin_site.transfers.resources import resource_for
    from console.customers.models import Customer

    started = time.perf_counter()
    dataset = read_dataset(data, "csv")
    resource = resource_for(Customer)(using="customers")
    result = run_import(resource, dataset, dry_run=False, via="command", file_name="bench.csv", file_format="csv")
    elapsed = time.perf_counter() - started
    assert not result.problems, result.problems[:3]
    return elapsed


def update_csv(rows, run):
    """A file that changes the notes of the first ``rows`` customers, by id (as an edited export would).

    Each ``run`` writes different notes: a file that changes nothing would be skipped as unchanged.
    """
    import csv
    import io

    from console.customers.models import Customer

    out = io.StringIO()
    writer = csv.writer(out)
    fields = ["id", "name", "email", "phone", "country", "status", "tier", "notes"]
    writer.writerow(fields)
    for row in Customer.objects.using("customers").order_by("pk").values_list(*fields[:-1])[:rows]:
        writer.writerow([*row, f"updated {row[0]} in run {run}"])
    return out.getvalue().encode()


def update_import(data, checked):
    """Seconds of the confirm: with the preview's row states (checked), or without (unchecked)."""
    from admin_site.transfers.imports import read_dataset, run_import
    from admin_site.transfers.resources import resource_for
    from admin_site.transfers.rowstates import RowStates
    from console.customers.models import Customer

    row_states = None
    if checked:
        preview = run_import(resource_for(Customer)(using="customers"), read_dataset(data, "csv"), dry_run=True)
        assert not preview.problems, preview.problems[:3]
        row_states = RowStates(preview.row_states.seen)
    started = time.perf_counter()
    resource = resource_for(Customer)(using="customers")
    result = run_import(resource, read_dataset(data, "csv"), dry_run=False, row_states=row_states)
    elapsed = time.perf_counter() - started
    assert not result.problems, result.problems[:3]
    return elapsed


def stock_import(data):
    """django-import-export as shipped: row-by-row saves, per-row savepoints, diffs."""
    import tablib
    from import_export.resources import modelresource_factory

    from admin_site.pinning import using_database
    from console.customers.models import Customer

    started = time.perf_counter()
    dataset = tablib.Dataset().load(data.decode(), format="csv")
    resource = modelresource_factory(Customer)()
    with using_database("customers"):  # stock would otherwise write to the router's choice
        result = resource.import_data(dataset, dry_run=False)
    elapsed = time.perf_counter() - started
    assert not result.has_errors() and not result.has_validation_errors()
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--stock-rows", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3, help="raw and console runs alternate; medians are compared")
    parser.add_argument("--update-rows", type=int, default=20_000)
    parser.add_argument("--url", default=os.environ.get("CONSOLE_BENCH_DB_URL"))
    args = parser.parse_args()
    if not args.url or not args.url.startswith("mysql"):
        parser.error("set CONSOLE_BENCH_DB_URL (or --url) to a MySQL/MariaDB URL of a scratch database")
    setup_django(args.url)

    data = make_csv(args.rows)
    raw_times, our_times = [], []
    for _ in range(args.rounds):  # alternate, so that a noisy neighbour hits both paths alike
        empty_customers()
        raw_times.append(raw_executemany(data))
        empty_customers()
        our_times.append(console_import(data))
    empty_customers()
    stock = stock_import(make_csv(args.stock_rows))
    empty_customers()

    tag_ids = bench_tags()
    with_tags, plain = make_csv(args.rows, tags=tag_ids), make_csv(args.rows)
    tag_times, plain_times = [], []
    for _ in range(args.rounds):
        empty_customers()
        plain_times.append(console_import(plain))
        empty_customers()
        tag_times.append(console_import(with_tags))
    empty_customers()

    console_import(make_csv(args.update_rows))
    checked_times, unchecked_times = [], []
    for round_number in range(args.rounds):
        unchecked_times.append(update_import(update_csv(args.update_rows, 2 * round_number), checked=False))
        checked_times.append(update_import(update_csv(args.update_rows, 2 * round_number + 1), checked=True))
    empty_customers()

    raw, ours = statistics.median(raw_times), statistics.median(our_times)
    raw_rate, our_rate, stock_rate = args.rows / raw, args.rows / ours, args.stock_rows / stock
    print(f"Import of new customers from CSV into MariaDB ({args.rows:,} rows, median of {args.rounds} alternating")
    print(f"rounds; stock on {args.stock_rows:,} rows once)")
    print(f"{'path':42} {'seconds':>9} {'rows/s':>10}   rounds (s)")
    print(f"{'raw PyMySQL executemany (baseline)':42} {raw:9.2f} {raw_rate:10,.0f}   {_seconds(raw_times)}")
    print(f"{'console import path (validated, bulk)':42} {ours:9.2f} {our_rate:10,.0f}   {_seconds(our_times)}")
    print(f"{'stock django-import-export default':42} {stock:9.2f} {stock_rate:10,.0f}")
    per_round = ", ".join(f"{r / o:.2f}" for r, o in zip(raw_times, our_times, strict=True))
    print(f"ratio console / raw   = {our_rate / raw_rate:.2f}  (target >= 0.50; per round: {per_round})")
    print(f"ratio console / stock = {our_rate / stock_rate:.1f}x")
    plain_s, tags_s = statistics.median(plain_times), statistics.median(tag_times)
    print(f"{'console, file without tags':42} {plain_s:9.2f} {args.rows / plain_s:10,.0f}   {_seconds(plain_times)}")
    print(f"{'console, same file with tags':42} {tags_s:9.2f} {args.rows / tags_s:10,.0f}   {_seconds(tag_times)}")
    print(f"ratio with tags / without = {plain_s / tags_s:.2f}  (target >= 0.50)")
    checked, unchecked = statistics.median(checked_times), statistics.median(unchecked_times)
    n = args.update_rows
    for label, seconds, times in (
        ("update import, unchecked (command line)", unchecked, unchecked_times),
        ("update confirm checked against its preview", checked, checked_times),
    ):
        print(f"{label:42} {seconds:9.2f} {n / seconds:10,.0f}   {_seconds(times)}")
    print(f"ratio checked / unchecked = {unchecked / checked:.2f}  (the price of refusing stale rows)")


def _seconds(times):
    return " ".join(f"{t:.2f}" for t in times)


if __name__ == "__main__":
    main()
