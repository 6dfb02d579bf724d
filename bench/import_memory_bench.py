"""Import memory: a web server's RSS while it previews (and confirms) a file near the size limit.

Usage (a fresh server per case; SQLite files in a temp dir, or the customers alias on MariaDB)::

    .venv/bin/python bench/import_memory_bench.py --mb 50
    eval "$(tests/mariadb.sh)"   # prints the option file; the grants allow console_% databases
    .venv/bin/python bench/import_memory_bench.py \\
        --db-url 'mysql://127.0.0.1:3306/console_bench_mem?read_default_file=~/.config/data-console/mariadb-test.cnf'
    git worktree add /tmp/console-old 5bc6b63    # the code before the streamed import
    .venv/bin/python bench/import_memory_bench.py --tree /tmp/console-old

Generates CSVs just under ``CONSOLE_IMPORT_MAX_BYTES``: new valid customers (``valid``),
rows that are all invalid (``invalid``) and, on request, valid rows with every 1000th
email invalid (``mixed``: fewer problems than the cap, so every row is checked). For
each, starts ``console.wsgi`` under ``wsgiref`` with ``DJANGO_DEBUG=0``, logs in over
HTTP, uploads the file streamed from disk, reads the whole preview and, for the valid
file, confirms it. Memory is read from outside the server (``/proc/<pid>/status``):
VmRSS when idle after login (the baseline), VmHWM over each request (reset before it),
VmRSS ``--settle`` seconds after it. A server above ``--kill-gb`` or ``--timeout`` is
killed and reported as such.
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from subprocess import PIPE

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 50 * 1024 * 1024  # CONSOLE_IMPORT_MAX_BYTES
IMPORT_URL = "/customers/customers/customer/import/"
CONFIRM_URL = "/customers/customers/customer/process_import/"
TARGET_MB = 400
#: What the import page's rows start with: a problem (row, column, value, message) and a preview row.
MARKERS = {"problems": b"<tr><td>", "preview": b'<td class="import-type">'}
SERVER = """
from wsgiref.simple_server import make_server
import console
from console.wsgi import application
server = make_server("127.0.0.1", 0, application)
print(server.server_port, console.__file__, flush=True)
server.serve_forever()
"""
COUNTRIES = ["DE", "FR", "GB", "US", "IT", "ES", "NL", "PL", "SE", "AT"]
STATUSES, TIERS = ["lead", "active", "active", "suspended"], ["standard", "standard", "silver", "gold", "vip"]
COUNT = "from console.customers.models import Customer; print(Customer.objects.using('customers').count())"
USERS = "from django.contrib.auth import get_user_model; get_user_model()._default_manager.db_manager('users')"


def write_csv(path, target, header, row):
    """Write ``header`` then ``row(i)`` lines while the file stays within ``target`` bytes; return the row count."""
    with open(path, "wb") as f:
        size, i = f.write(header), 0
        while size + len(line := row(i)) <= target:
            size += f.write(line)
            i += 1
    return i


def valid_row(i):
    """The row shape of import_bench.make_csv: a new customer with a unique email."""
    country, status, tier = COUNTRIES[i % 10], STATUSES[i % 4], TIERS[i % 5]
    return f"Customer {i},customer{i}@bench.example,+49 30 {i:07d},{country},{status},{tier},\r\n".encode()


def invalid_row(i):
    return f"C{i},not-an-email,DE,lead,gold\r\n".encode()


def mixed_row(i):
    """A valid row, but every 1000th email is invalid: fewer problems than the cap, so every row is checked."""
    return valid_row(i).replace(b"@", b"-at-") if i % 1000 == 999 else valid_row(i)


def memory(pid):
    """(VmRSS, VmHWM) in MiB, or (None, None) once the process has ended."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M))  # none in a zombie
    return tuple(int(values[key]) / 1024 if key in values else None for key in ("VmRSS", "VmHWM"))


class Server:
    """One fresh console process on a free port, its databases migrated, a superuser in them."""

    def __init__(self, tree, env, workdir):
        self.tree, self.env, self.cookies, self.password = tree, env, {}, uuid.uuid4().hex
        self.manage("from django.core.management import call_command; call_command('migrate_all', verbosity=0)")
        self.manage(f"{USERS}.create_superuser('bench', 'bench@example.com', '{self.password}')")
        self.log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], cwd=tree, env=env, stdout=PIPE, stderr=self.log)
        port, self.module = self.proc.stdout.readline().decode().split()
        self.port, self.pid = int(port), self.proc.pid

    def manage(self, code):
        """Run ``code`` in ``manage.py shell`` on the server's tree and databases; return its last output word."""
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=self.tree, env=self.env, stdout=PIPE
        )
        out.check_returncode()
        return (out.stdout.split() or [b""])[-1].decode()

    def request(self, method, url, body=None, headers=(), timeout=60):
        """Send a request; read the whole response, keeping its first 2 MB and counting MARKERS in all of it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {**dict(headers), "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        conn.request(method, url, body=body, headers=headers)
        response = conn.getresponse()
        for line in response.headers.get_all("Set-Cookie") or ():
            self.cookies.update({k: m.value for k, m in SimpleCookie(line).items()})
        response.counts, response.head, response.size, tail = dict.fromkeys(MARKERS, 0), b"", 0, b""
        while chunk := response.read(1 << 20):
            response.size += len(chunk)
            response.head += chunk[: max(0, 2_000_000 - len(response.head))]
            text, tail = tail + chunk, chunk[-30:]
            for key, marker in MARKERS.items():  # a marker inside the carried tail is counted in the next round
                response.counts[key] += text.count(marker) - tail.count(marker)
        conn.close()
        return response

    def post_form(self, url, fields, **kwargs):
        body = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": self.cookies["csrftoken"]}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://127.0.0.1:{self.port}{url}"}
        return self.request("POST", url, body, headers, **kwargs)

    def login(self):
        self.request("GET", "/customers/login/")
        credentials = {"username": "bench", "password": self.password}
        if self.post_form("/customers/login/?next=/customers/", credentials).status != 302:
            raise SystemExit("login failed")
        assert self.request("GET", IMPORT_URL).status == 200

    def upload(self, path, **kwargs):
        """POST the file as multipart/form-data, streamed from disk with an explicit Content-Length."""
        boundary = uuid.uuid4().hex
        fields = {"csrfmiddlewaretoken": self.cookies["csrftoken"], "resource": "0", "format": "0"}  # 0: CSV
        part = f"--{boundary}\r\nContent-Disposition: form-data; name="
        pre = "".join(f'{part}"{k}"\r\n\r\n{v}\r\n' for k, v in fields.items())
        pre = f'{pre}{part}"import_file"; filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        post = f"\r\n--{boundary}--\r\n".encode()

        def body():
            yield pre
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
            yield post

        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(pre) + path.stat().st_size + len(post)),
            "Referer": f"http://127.0.0.1:{self.port}{IMPORT_URL}",
        }
        return self.request("POST", IMPORT_URL, body(), headers, **kwargs)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()


def measured(server, send, args, idle):
    """Run ``send()`` with the server's peak reset, watched and killed when it runs away; return the figures."""
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    state = {"done": False, "killed": None, "hwm": idle}
    started = time.perf_counter()

    def watch():
        while not state["done"]:
            rss, state["hwm"] = memory(server.pid)
            over_time = time.perf_counter() - started > args.timeout
            if rss is None or rss > args.kill_gb * 1024 or over_time:
                if rss is not None:
                    state["killed"] = f"> {args.timeout:g} s" if over_time else f"> {args.kill_gb:g} GB"
                    server.proc.send_signal(signal.SIGKILL)
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        response, error = send(), None
    except (OSError, http.client.HTTPException) as exc:
        response, error = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    time.sleep(0.3)
    hwm = memory(server.pid)[1] or state["hwm"]  # killed: the last peak the watcher read
    state["done"] = True
    watcher.join()
    time.sleep(args.settle)  # let the allocator hand memory back
    figures = {"idle": idle, "peak": hwm, "after": memory(server.pid)[0], "seconds": seconds, "response": response}
    figures["error"] = state["killed"] or error or ""
    return figures


def run_case(name, path, rows, args, workdir, env):
    """Preview the file on a fresh server (and confirm it if valid); return [(request, figures, outcome)]."""
    server = Server(args.tree, env, workdir)
    results = []
    try:
        server.login()
        time.sleep(1.0)
        idle = memory(server.pid)[0]  # the baseline: logged in, the import page served once
        print(f"  [{name}] server pid {server.pid} on :{server.port} runs {server.module}", file=sys.stderr)
        preview = measured(server, lambda: server.upload(path, timeout=args.timeout), args, idle)
        response, outcome = preview["response"], "-"
        if response:
            outcome = f"HTTP {response.status}: {response.counts['problems']:,} problems, "
            outcome += f"{response.counts['preview']} preview rows"
            headline = re.search(rb'<h2 id="import-problems">(.*?)</h2>', response.head, re.S)
            outcome += f" ({headline[1].decode().strip()})" if headline else ""
            stopped = re.search(rb"checking stopped at row (\d+)", response.head)
            outcome += f", checking stopped at row {int(stopped[1]):,}" if stopped else ""
        results.append(("preview", preview, outcome))
        form = re.search(rb'process_import/" method="POST">(.*?)</form>', response.head, re.S) if response else None
        if name == "valid" and form:
            fields = {k.decode(): v.decode() for k, v in re.findall(rb'name="(\w+)" value="([^"]*)"', form[1])}
            fields.pop("csrfmiddlewaretoken", None)
            confirm = measured(server, lambda: server.post_form(CONFIRM_URL, fields, timeout=args.timeout), args, idle)
            response, outcome = confirm["response"], "-"
            if response:
                outcome = f"HTTP {response.status} -> {response.headers.get('Location')}"
                outcome += f"; {int(server.manage(COUNT)):,} rows in the table (file {rows:,})"
            results.append(("confirm", confirm, outcome))
        elif name == "valid":
            results.append(("confirm", {"error": "no confirm form in the preview"}, "-"))
    finally:
        server.stop()
    log = (workdir / "server.log").read_text(errors="replace")
    if "Traceback" in log:
        print(f"  [{name}] the server logged:\n{log[log.index('Traceback') :][-4000:]}", file=sys.stderr)
    return results


COLUMNS = {"case": -7, "request": -7, "file MiB": 8, "rows": 9, "idle MB": 7, "peak MB": 8, "after MB": 8}
COLUMNS |= {"peak-idle": 9, "peak/idle": 9, f"<{TARGET_MB}": 4, "resp MB": 7, "seconds": 7}


def row(cells):
    return " ".join(f"{c:{'<' if w < 0 else '>'}{abs(w)}}" for c, w in zip(cells, COLUMNS.values(), strict=True))


def mb(value):
    return "-" if value is None else f"{value:,.0f}"


def fresh_mysql_database(url, drop_only=False):
    import pymysql

    parts = urllib.parse.urlsplit(url)
    cnf = os.path.expanduser(dict(urllib.parse.parse_qsl(parts.query))["read_default_file"])
    name = parts.path.strip("/")
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, read_default_file=cnf)
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        if not drop_only:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()


def describe(tree):
    def git(*command):
        return subprocess.run(["git", "-C", tree, *command], capture_output=True, text=True).stdout.strip()

    dirty = " + uncommitted changes" if git("status", "-s", "-uno") else ""
    return f"{tree} at {git('rev-parse', '--short', 'HEAD')}{dirty}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50, help="file size in MiB, capped just under the upload limit")
    parser.add_argument("--cases", default="valid,invalid", help="any of valid, invalid, mixed")
    parser.add_argument("--tree", default=str(ROOT), help="the checkout whose code the server runs")
    parser.add_argument("--db-url", help="a MySQL/MariaDB URL (with a database name) for the customers alias")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per request before the server is killed")
    parser.add_argument("--settle", type=float, default=1, help="seconds after a response before RSS after is read")
    parser.add_argument("--kill-gb", type=float, default=8, help="kill a server whose RSS passes this")
    args = parser.parse_args()
    args.tree = str(Path(args.tree).resolve())
    target = min(int(args.mb * 1024 * 1024), MAX_BYTES - 64 * 1024)
    workdir = Path(tempfile.mkdtemp(prefix="console-memory-bench-"))
    database = "MariaDB (customers alias)" if args.db_url else "SQLite files"
    print(f"Import memory over HTTP: {describe(args.tree)}; wsgiref, DJANGO_DEBUG=0; {database}")
    print(row(COLUMNS) + "  result", flush=True)
    files = {
        "valid": (b"name,email,phone,country,status,tier,notes\r\n", valid_row),
        "invalid": (b"name,email,country,status,tier\r\n", invalid_row),
        "mixed": (b"name,email,phone,country,status,tier,notes\r\n", mixed_row),
    }
    try:
        for name in args.cases.split(","):
            path = workdir / f"{name}.csv"
            count = write_csv(path, target, *files[name])
            env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SETTINGS_MODULE": "console.settings"}
            env["CONSOLE_VAR_DIR"] = str(workdir / f"var-{name}")
            if args.db_url:
                fresh_mysql_database(args.db_url)
                env["CONSOLE_DB_CUSTOMERS"] = args.db_url
            try:
                for request, figures, outcome in run_case(name, path, count, args, workdir, env):
                    error = f"  [{figures['error']}]" if figures.get("error") else ""
                    print(row(cells(name, path.stat().st_size, count, request, figures)) + f"  {outcome}{error}")
            finally:
                if args.db_url:
                    fresh_mysql_database(args.db_url, drop_only=True)
            path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"target: peak < {TARGET_MB} MB for either file, and RSS after well below the peak. MB = MiB. "
        f"peak = VmHWM over the request (reset before it); after = VmRSS {args.settle:g} s after the response."
    )


def cells(name, size, count, request, f):
    """One table row: the file, the server's memory around the request, the response."""
    idle, peak, error, response = f.get("idle"), f.get("peak"), f.get("error") or "", f.get("response")
    over = error.endswith("GB")
    values = [name, request, f"{size / 2**20:.1f}", f"{count:,}", mb(idle), error if over else mb(peak)]
    values += [mb(f.get("after")), mb(peak - idle) if idle and peak else "-"]
    values += [f"{peak / idle:.1f}x" if idle and peak else "-"]
    values += ["no" if over else "?" if error.startswith(">") or peak is None else "yes" if peak < TARGET_MB else "no"]
    return values + [f"{response.size / 1e6:.1f}" if response else "-", f"{f.get('seconds', 0):.1f}"]


if __name__ == "__main__":
    main()
