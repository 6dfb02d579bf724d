"""What recording an import's history costs: the console's import path with and without it, side by side.

Usage (MariaDB; the customers database is created, migrated and emptied by the script)::

    export CONSOLE_BENCH_DB_URL='mysql://127.0.0.1:3306/console_bench?read_default_file=/path/to/client.cnf'
    .venv/bin/python bench/history_bench.py --rows 20000 --rounds 3

For a file of new customers, then the same rows updated through the key
column, prints the median seconds of ``run_import`` without a user (the
command line: no history) and with one (a person's import: a summary entry
and per-row diffs for the first ``CONSOLE_HISTORY_IMPORT_ROWS`` rows), and the
ratio.
"""

import argparse
import csv
import io
import os
import statistics
import time

from import_bench import empty_customers, make_csv, setup_django


def update_csv(data):
    """The same rows with their ids and a changed name and tier: every row an update."""
    from console.customers.models import Customer

    ids = dict(Customer.objects.using("customers").values_list("email", "pk"))
    rows = list(csv.reader(io.StringIO(data.decode())))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", *rows[0]])
    for row in rows[1:]:
        writer.writerow([ids[row[1]], row[0] + " (renamed)", *row[1:5], "gold", *row[6:]])
    return out.getvalue().encode()


def timed_import(data, user):
    from admin_site.transfers.imports import read_dataset, run_import
    from admin_site.transfers.resources import resource_for
    from console.customers.models import Customer

    started = time.perf_counter()
    resource = resource_for(Customer)(using="customers")
    result = run_import(resource, read_dataset(data, "csv"), dry_run=False, user=user, file_name="bench.csv")
    elapsed = time.perf_counter() - started
    assert not result.problems, result.problems[:3]
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("CONSOLE_BENCH_DB_URL"))
    args = parser.parse_args()
    if not args.url or not args.url.startswith("mysql"):
        parser.error("set CONSOLE_BENCH_DB_URL (or --url) to a MySQL/MariaDB URL of a scratch database")
    setup_django(args.url)
    from django.conf import settings
    from django.contrib.auth.models import User

    user, _ = User.objects.db_manager("users").get_or_create(username="bench-history", defaults={"is_staff": True})
    data = make_csv(args.rows)
    times = {("new", False): [], ("new", True): [], ("update", False): [], ("update", True): []}
    for _ in range(args.rounds):  # alternate, so that a noisy neighbour hits both paths alike
        for with_history in (False, True):
            empty_customers()
            times[("new", with_history)].append(timed_import(data, user if with_history else None))
            updates = update_csv(data)
            times[("update", with_history)].append(timed_import(updates, user if with_history else None))
    empty_customers()
    cap = getattr(settings, "CONSOLE_HISTORY_IMPORT_ROWS", 1000)
    print(f"Import history cost: {args.rows:,} rows, median of {args.rounds} rounds, per-row diffs capped at {cap:,}")
    for kind in ("new", "update"):
        off, on = statistics.median(times[(kind, False)]), statistics.median(times[(kind, True)])
        print(f"{kind:7} rows: without history {off:7.2f} s   with history {on:7.2f} s   ratio {off / on:.2f}")


if __name__ == "__main__":
    main()
