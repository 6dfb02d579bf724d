"""Scale-out bench (issue 18): changelist requests/s through the balancer, 1 host without a replica against 2 with one.

Usage (mariadb-server's programs, nginx, and Apache's development files for mod_wsgi installed; Redis on 6379;
the machine's MariaDB on 3306 is not used)::

    .venv/bin/python bench/scaleout_bench.py                       # about 90 s: 5,000 customers, 20 s each
    .venv/bin/python bench/scaleout_bench.py --control             # and C (below): about 130 s
    .venv/bin/python bench/scaleout_bench.py --customers 100000    # a bigger table (about 20 s more per rig)
    .venv/bin/python bench/scaleout_bench.py --quick               # a smoke run, under a minute (CI-style)

One run builds two rigs (``tests/cluster.py``), one after the other, with the same data:

A. 1 app host (mod_wsgi-express, daemon mode), nginx in front, the MariaDB primary only;
B. 2 app hosts on 127.0.0.2 and 127.0.0.3, nginx round-robin, every host also given the replica
   (``CONSOLE_DB_<ALIAS>_REPLICAS``), a GTID replica of the same primary.

``--control`` adds a third rig, C: 1 host with twice the daemon processes and no replica, to tell what the second
host and the replica add from what a second Python process adds.  On each rig, N logged-in clients (threads, each its
own session and keep-alive connection through nginx) GET the customers changelist in a fixed mix (page 1, a search, a
filter, page 2) for a warm-up, then for the measured window.  Printed per rig: requests/s, p50/p95 latency, errors
(anything but a 200 changelist page), which host answered, SELECTs per request on each server (``Com_select``
deltas minus an idle baseline measured just before), rows read in the customers database on each server
(``userstat``'s ``TABLE_STATISTICS``), and the CPU each piece used during the window (``/proc``: the mariadbd
processes, each host's Apache and daemons, nginx, Redis, this process's client threads, and the machine's other
load).  Then the ratio B/A (and C/A) and the replica's share of the reads in B.

Exits 1 when a request failed or, in B, the replica served no reads; never on a speed figure.
"""

import argparse
import http.client
import os
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from admin_site.express import Unavailable, session_processes  # noqa: E402
from tests.cluster import Rig  # noqa: E402

CUSTOMERS = "/customers/customers/customer/"
#: The load's mix, each client cycling through it from its own starting point.
MIX = {
    "page 1": CUSTOMERS,
    "search": f"{CUSTOMERS}?q=Lindqvist",
    "filter": f"{CUSTOMERS}?status__exact=active",
    "page 2": f"{CUSTOMERS}?p=2",
}
#: What a real changelist page holds (a login page or an error page does not).
CHANGELIST_MARK = b'id="changelist"'
#: The customers the rig itself loads; a bigger ``--customers`` replaces them through ``load_demo_data``.
RIG_CUSTOMERS = 40
CLEAR_CUSTOMERS = """
from django.db import connections
from console.customers.models import Address, BusinessCustomer, Customer, Order, OrderLine
with connections["customers"].cursor() as cursor:
    for model in (OrderLine, Order, Address, BusinessCustomer, Customer.tags.through, Customer):
        cursor.execute("DELETE FROM " + connections["customers"].ops.quote_name(model._meta.db_table))
"""
PLANS = {
    "full": dict(customers=5_000, clients=8, seconds=20.0, warmup=5.0, idle=5.0),
    "quick": dict(customers=250, clients=4, seconds=4.0, warmup=1.5, idle=2.0),  # 250: a list with a page 2
}
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU from /proc --------------------------------------------------------------------------------------------------


def process_ticks(pid):
    """utime + stime + the reaped children's cutime + cstime of ``pid``: a group's sum stays whole as children exit."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(value) for value in fields[11:15])


def machine_ticks():
    """(busy, all) jiffies of the whole machine, every core, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def redis_pids():
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "redis-server":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def cpu_groups(rig):
    """Name -> a function returning the pids of that piece of ``rig`` (looked up again at each reading)."""
    groups = {
        "mariadbd primary": lambda: [rig.pair.primary.process.pid],
        "mariadbd replica": lambda: [rig.pair.replica.process.pid],
    }
    for host in rig.hosts:
        groups[f"{host.name} (Apache + daemons)"] = lambda host=host: session_processes(host.server.process.pid)
    groups["nginx"] = lambda: session_processes(rig.balancer.process.pid)
    groups["redis (the machine's)"] = redis_pids
    groups["bench clients (this process)"] = lambda: [os.getpid()]
    return groups


def cpu_reading(groups):
    return {name: sum(process_ticks(pid) for pid in pids()) for name, pids in groups.items()}, machine_ticks()


# -- MariaDB counters --------------------------------------------------------------------------------------------------


def counters(rig, which):
    """(Com_select, rows read in the customers database) on ``which`` server."""
    server = rig.pair.server(which)
    ((_name, selects),) = server.sql("SHOW GLOBAL STATUS WHERE Variable_name = 'Com_select'")
    ((rows,),) = server.sql(
        "SELECT COALESCE(SUM(ROWS_READ), 0) FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA = %s",
        rig.databases["customers"],
    )
    return int(selects), int(rows)


def all_counters(rig):
    return {which: counters(rig, which) for which in ("primary", "replica")}


# -- The load --------------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    what: str
    ended: float
    seconds: float
    outcome: object  # 200, another status, "not a changelist", or an exception's name
    upstream: str = ""


class Client(threading.Thread):
    """One logged-in browser: its session cookie, one keep-alive connection to nginx, the mix in a loop."""

    def __init__(self, rig, offset, stop):
        super().__init__(daemon=True)
        client = rig.admin()  # logged in through the balancer, second factor answered
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies)
        self.address, self.port = rig.balancer.address, rig.balancer.port
        self.order = list(MIX.items())[offset % len(MIX) :] + list(MIX.items())[: offset % len(MIX)]
        self.stop, self.samples = stop, []

    def run(self):
        connection = http.client.HTTPConnection(self.address, self.port, timeout=60)
        headers = {"Cookie": self.cookie, "Accept-Encoding": "identity"}
        while not self.stop.is_set():
            for what, path in self.order:
                started = time.monotonic()
                upstream = ""
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    body = response.read()
                    upstream = (response.headers.get("X-Upstream") or "").split(",")[-1].strip()
                    outcome = response.status
                    if outcome == 200 and CHANGELIST_MARK not in body:
                        outcome = "not a changelist"
                except (http.client.HTTPException, OSError) as error:
                    connection.close()
                    outcome = type(error).__name__
                ended = time.monotonic()
                self.samples.append(Sample(what, ended, ended - started, outcome, upstream))
                if self.stop.is_set():
                    break
        connection.close()


@dataclass
class Result:
    label: str
    description: str
    window: float = 0.0
    samples: list = field(default_factory=list)
    selects: dict = field(default_factory=dict)  # server -> SELECTs in the window, idle baseline taken off
    idle_selects: dict = field(default_factory=dict)  # server -> SELECTs/s while idle
    rows_read: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)  # group -> cores used on average over the window
    machine: float = 0.0  # cores busy on the whole machine
    hosts: dict = field(default_factory=dict)

    @property
    def requests(self):
        return len(self.samples)

    @property
    def errors(self):
        return Counter(f"{s.what}: {s.outcome}" for s in self.samples if s.outcome != 200)

    @property
    def rate(self):
        return self.requests / self.window if self.window else 0.0

    def quantile(self, q):
        latencies = sorted(s.seconds for s in self.samples)
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]


def prepare(rig, customers):
    """Give ``rig`` ``customers`` demo customers (the rig loads 40), replicated, with an empty cache."""
    if customers != RIG_CUSTOMERS:
        env = rig.host_env(0)
        rig.runtime.manage("shell", "-c", CLEAR_CUSTOMERS, env=env)
        if customers:
            rig.runtime.manage("load_demo_data", "--customers", str(customers), "--users", "0", "--legacy", "0",
                               env=env)  # fmt: skip
    rig.pair.wait_caught_up(600)
    import redis

    redis.Redis.from_url(rig.host_env(0)["CONSOLE_CACHE_URL"]).flushdb()  # no count or page cached from before
    for which in ("primary", "replica"):
        rig.pair.server(which).sql("SET GLOBAL userstat = 1")
    ((count,),) = rig.rows("customers", "SELECT COUNT(*) FROM customers_customer")
    ((replica_count,),) = rig.rows("customers", "SELECT COUNT(*) FROM customers_customer", on="replica")
    assert count == replica_count == customers, (count, replica_count, customers)


def measure(label, description, plan, rig_options):
    result = Result(label, description)
    started = time.monotonic()
    rig = Rig(prefix=plan["prefix"], **rig_options)
    try:
        rig.start()
        built = time.monotonic() - started
        prepare(rig, plan["customers"])
        prepared = time.monotonic() - started - built
        stop = threading.Event()
        clients = [Client(rig, offset, stop) for offset in range(plan["clients"])]
        # The idle baseline: the servers' own SELECTs (health checks' MASTER_GTID_WAIT, none of the load's).
        before, idle_started = all_counters(rig), time.monotonic()
        time.sleep(plan["idle"])
        after, idle = all_counters(rig), time.monotonic() - idle_started
        result.idle_selects = {w: (after[w][0] - before[w][0]) / idle for w in before}
        for client in clients:
            client.start()
        time.sleep(plan["warmup"])
        groups = cpu_groups(rig)
        cpu_before, db_before, window_started = cpu_reading(groups), all_counters(rig), time.monotonic()
        time.sleep(plan["seconds"])
        cpu_after, db_after, window_ended = cpu_reading(groups), all_counters(rig), time.monotonic()
        stop.set()
        for client in clients:
            client.join(90)
        result.window = window_ended - window_started
        result.samples = [
            s for client in clients for s in client.samples if window_started < s.ended <= window_ended
        ]  # fmt: skip
        for which in db_before:
            measured = db_after[which][0] - db_before[which][0]
            result.selects[which] = max(0.0, measured - result.idle_selects[which] * result.window)
            result.rows_read[which] = db_after[which][1] - db_before[which][1]
        ticks = TICK * result.window
        result.cpu = {name: (cpu_after[0][name] - cpu_before[0][name]) / ticks for name in groups}
        (busy_before, all_before), (busy_after, all_after) = cpu_before[1], cpu_after[1]
        result.machine = (busy_after - busy_before) / (all_after - all_before) * os.cpu_count()
        names = {host.upstream: host.name for host in rig.hosts}
        result.hosts = Counter(names.get(s.upstream, s.upstream or "?") for s in result.samples)
        print(f"\n== {label}: {description} ==")
        print(f"  rig built in {built:.0f} s, data ready in {prepared:.0f} s; {plan['clients']} clients, ", end="")
        print(f"{plan['warmup']:.0f} s warm-up, {result.window:.1f} s measured")
        report(result)
    finally:
        rig.stop()
    return result


def report(result):
    ms = 1000
    errors = result.errors
    print(f"  requests {result.requests:,}: {result.rate:,.1f}/s; p50 {result.quantile(0.5) * ms:,.0f} ms, ", end="")
    print(f"p95 {result.quantile(0.95) * ms:,.0f} ms; errors {sum(errors.values())} {dict(errors) or ''}")
    by_what = {}
    for sample in result.samples:
        by_what.setdefault(sample.what, []).append(sample.seconds)
    print("  p50 per page: " + ", ".join(f"{w} {statistics.median(v) * ms:,.0f} ms" for w, v in by_what.items()))
    print("  answered by: " + ", ".join(f"{h} {n:,}" for h, n in sorted(result.hosts.items())))
    requests = max(result.requests, 1)
    for which in ("primary", "replica"):
        print(f"  {which}: {result.selects[which] / requests:.1f} SELECTs/request ", end="")
        print(f"(idle baseline {result.idle_selects[which]:.1f}/s taken off), ", end="")
        print(f"{result.rows_read[which] / requests:,.0f} customers rows read/request")
    ours = sum(result.cpu.values())
    print(f"  CPU (cores of {os.cpu_count()}, average over the window): ", end="")
    print(", ".join(f"{name} {cores:.2f}" for name, cores in result.cpu.items() if cores >= 0.005))
    other = result.machine - ours  # other users of the shared machine (and processes the groups above miss)
    print(f"  machine busy {result.machine:.2f} cores: the above {ours:.2f}, everything else {other:.2f}")


def replica_share(result):
    """(share of the load's SELECTs, share of the customers rows read) that the replica served."""
    selects, rows = sum(result.selects.values()), sum(result.rows_read.values())
    return result.selects["replica"] / max(selects, 1), result.rows_read["replica"] / max(rows, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 250 customers, 4 clients, 4 s per rig")
    parser.add_argument("--customers", type=int, help="demo customers on each rig (5,000; quick: 250)")
    parser.add_argument("--clients", type=int, help="concurrent logged-in clients (8; quick: 4)")
    parser.add_argument("--seconds", type=float, help="measured seconds per rig (20; quick: 4)")
    parser.add_argument("--warmup", type=float, help="seconds of load before measuring (5; quick: 1.5)")
    parser.add_argument("--processes", type=int, default=1, help="daemon processes per host (1, as the rig)")
    parser.add_argument("--threads", type=int, default=3, help="threads per daemon process (3, as the rig)")
    parser.add_argument("--control", action="store_true", help="also C: 1 host, twice the processes, no replica")
    parser.add_argument("--prefix", default="scaleout", help="the rig's database prefix (console_<prefix>_<alias>)")
    args = parser.parse_args(argv)
    plan = dict(PLANS["quick" if args.quick else "full"], prefix=args.prefix)
    plan.update({k: v for k in ("customers", "clients", "seconds", "warmup") if (v := getattr(args, k)) is not None})
    per_host = dict(processes=args.processes, threads=args.threads)
    rigs = [
        ("A", f"1 host ({args.processes} x {args.threads}), no replica", dict(hosts=1, replicas=False, **per_host)),
        ("B", f"2 hosts ({args.processes} x {args.threads} each), a replica", dict(hosts=2, replicas=True, **per_host)),
    ]
    if args.control:
        control = dict(hosts=1, replicas=False, processes=2 * args.processes, threads=args.threads)
        rigs.append(("C", f"1 host ({2 * args.processes} x {args.threads}), no replica", control))
    started = time.monotonic()
    print(f"scale-out bench: {plan['customers']:,} customers, {plan['clients']} clients, the mix: {', '.join(MIX)}")
    results = {}
    try:
        for label, description, options in rigs:
            results[label] = measure(label, description, plan, options)
    except Unavailable as reason:
        print(f"cannot run: {reason}")
        return 2
    a, b = results["A"], results["B"]
    print("\n== summary ==")
    print(f"  A {a.rate:,.1f} requests/s, B {b.rate:,.1f} requests/s: B/A {b.rate / a.rate if a.rate else 0:.2f}")
    if "C" in results:
        c = results["C"]
        print(f"  C {c.rate:,.1f} requests/s: C/A {c.rate / a.rate if a.rate else 0:.2f}, ", end="")
        print(f"B/C {b.rate / c.rate if c.rate else 0:.2f}")
    selects, rows = replica_share(b)
    print(f"  B's replica served {selects:.0%} of the load's SELECTs and {rows:.0%} of the customers rows read")
    failures = [
        f"{r.label}: {sum(r.errors.values())} failed requests {dict(r.errors)}" for r in results.values() if r.errors
    ]
    if not b.selects["replica"] or not b.rows_read["replica"]:
        failures.append("B: the replica served no reads")
    print(f"\n{len(failures)} problem(s) in {time.monotonic() - started:.0f} s", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
