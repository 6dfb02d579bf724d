"""The console under Apache + mod_wsgi (daemon mode), driven over real HTTP.

Logins on each panel, refusals, static files, an import whose preview and
confirm land in different daemon processes, a streamed export, logout, and the
server's sizing: 50 keep-alive sessions at once, and the request-body limit.
"""

import csv
import http.client
import io
import re
import threading
import time
import uuid

from admin_site.express import import_max_bytes
from tests.e2e.conftest import PANELS, daemon_processes, server_processes

CUSTOMERS = "/customers/customers/customer/"


def test_daemon_mode_with_two_processes_on_loopback_only(console):
    # A daemon killed by an earlier test is replaced within seconds: wait for it, never for long.
    deadline = time.monotonic() + 30
    while len(daemons := daemon_processes(console.server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(daemons) >= 2, server_processes(console.server)
    if console.runtime.user:
        assert {user for _pid, user, _cmd in daemons} == {console.runtime.user}
    # The only listening socket on the port is 127.0.0.1's.
    port = f"{console.server.port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local.endswith(":" + port):
                listening.append(local)
    assert listening == ["0100007F:" + port], listening


def test_each_panel_has_a_working_login(console):
    for panel in PANELS:
        client = console.client()
        page = client.get(f"/{panel}/login/")
        assert page.status == 200 and f'data-database="{panel}"' in page.text
        response = client.login(panel, "e2e-admin", console.password)
        assert (response.status, response.location) == (302, f"/{panel}/")
        index = client.get(f"/{panel}/")
        assert index.status == 200
        assert f'id="panel-band" role="note" data-database="{panel}"' in index.text


def test_staff_without_a_panel_permission_is_refused(console):
    nobody = console.client()
    assert nobody.login("customers", "e2e-nopanel", console.password).status == 302
    home = nobody.get("/")
    assert home.status == 403 and "may not enter any panel" in home.text
    index = nobody.get("/customers/")
    assert index.status == 302 and index.location.startswith("/customers/login/")

    clerk = console.client()
    assert clerk.login("customers", "e2e-clerk", console.password).status == 302
    assert clerk.get("/customers/").status == 200
    assert clerk.get(CUSTOMERS).status == 200
    assert clerk.get(CUSTOMERS + "add/").status == 403  # view only
    assert clerk.get(CUSTOMERS + "import/").status == 403
    for other in ("users", "legacy"):
        response = clerk.get(f"/{other}/")
        assert response.status == 302 and response.location.startswith(f"/{other}/login/")


def test_static_files_are_served_by_apache(console):
    page = console.client().get("/customers/login/")
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page.text)
    assert stylesheets, "the login page links no stylesheet"
    for url in stylesheets:
        response = console.client().get(url)
        assert response.status == 200, url
        assert response.headers["Content-Type"].startswith("text/css")
        assert response.pid is None, "static files must not go through Django"
    assert console.client().get("/static/admin/css/no-such-file.css").status == 404


def customers_csv(tag, rows=3):
    lines = ["name,email,country,status,tier"]
    lines += [f"E2E {tag} {i},e2e-{tag}-{i}@example.com,DE,active,gold" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_import_preview_and_confirm_in_different_daemon_processes(console):
    client = console.admin()
    seen = set()
    for attempt in range(1, 31):
        tag = uuid.uuid4().hex[:8]
        preview = client.preview_import(CUSTOMERS, f"e2e-{tag}.csv", customers_csv(tag))
        assert preview.status == 200 and "3 new" in preview.text, preview.text[-2000:]
        assert not console.rows("customers", "SELECT id FROM customers_customer WHERE email LIKE %s", f"e2e-{tag}-%")
        confirm = client.submit(preview, CUSTOMERS + "process_import/", form_id=None)
        assert confirm.status == 302, confirm.text[-2000:]
        seen |= {preview.pid, confirm.pid}
        console.timings["import cycles until preview and confirm differ"] = attempt
        if preview.pid != confirm.pid:
            break
    else:
        raise AssertionError(f"30 previews and confirms, always one daemon process: {seen}")
    assert len(seen) >= 2
    query = "SELECT email FROM customers_customer WHERE email LIKE %s"
    emails = {email for (email,) in console.rows("customers", query, f"e2e-{tag}-%")}
    assert emails == {f"e2e-{tag}-{i}@example.com" for i in range(3)}
    # In the customers database only.
    for alias in ("users", "legacy"):
        tables = {t for (t,) in console.rows(alias, "SHOW TABLES")}
        assert "customers_customer" not in tables
    changelist = client.get(CUSTOMERS + f"?q=e2e-{tag}")
    assert changelist.status == 200 and f"e2e-{tag}-0@example.com" in changelist.text


def test_export_is_streamed(console):
    client = console.admin()
    form = client.get(CUSTOMERS + "export/")
    assert form.status == 200
    response = client.submit(form, CUSTOMERS + "export/", {"format": form.option("format", "csv")})
    assert response.status == 200, response.text[-2000:]
    assert response.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in response.headers
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.body.decode("utf-8-sig"))))
    (count,) = console.rows("customers", "SELECT COUNT(*) FROM customers_customer")[0]
    assert len(rows) == count and count >= 40
    assert {"name", "email"} <= set(rows[0])


def test_logout(console):
    client = console.admin()
    assert client.get("/customers/").status == 200
    page = client.get("/customers/")
    response = client.submit(page, "/customers/logout/", form_id="logout-form")
    assert response.status == 200 and "Logged out" in response.text
    after = client.get("/customers/")
    assert after.status == 302 and after.location.startswith("/customers/login/")


def keep_alive_session(console, seconds, start, results):
    """One client on one keep-alive connection asking for the login page back to back for ``seconds``.

    Appends (first answer after, longest wait for an answer, answers, connections the server closed).
    """
    host, port = console.server.host, console.server.port
    connection = http.client.HTTPConnection(host, port, timeout=15)
    first, longest, answers, closed = None, 0.0, 0, 0
    start.wait()
    began = last = time.monotonic()
    try:
        while time.monotonic() - began < seconds:
            try:
                connection.request("GET", "/users/login/")
                response = connection.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                closed += 1  # a browser would retry; the server dropped a session it had accepted
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=15)
                continue
            now = time.monotonic()
            assert response.status == 200, response.status
            first = now - began if first is None else first
            longest, last, answers = max(longest, now - last), now, answers + 1
    finally:
        connection.close()
        results.append((first, longest, answers, closed))


def test_fifty_keep_alive_sessions_are_all_served(console):
    """Express's defaults accepted about 22 connections: the others waited, or had their connections dropped."""
    start, results = threading.Event(), []
    clients = [threading.Thread(target=keep_alive_session, args=(console, 5, start, results)) for _ in range(50)]
    for client in clients:
        client.start()
    start.set()
    for client in clients:
        client.join(30)
    assert len(results) == 50, f"{50 - len(results)} clients still waiting after 30 s"
    unanswered = [r for r in results if r[0] is None]
    assert not unanswered, f"{len(unanswered)} of 50 keep-alive clients got no answer"
    firsts, longest = sorted(r[0] for r in results), max(r[1] for r in results)
    answers, closed = sum(r[2] for r in results), sum(r[3] for r in results)
    console.timings["keep-alive: slowest first answer"] = firsts[-1]
    console.timings["keep-alive: longest wait"] = longest
    console.timings["keep-alive: answers"] = answers
    assert firsts[-1] < 3, f"first answers after up to {firsts[-1]:.1f}s: {firsts[-5:]}"
    assert longest < 3, f"a client waited {longest:.1f}s for an answer"
    assert closed <= answers / 100, f"the server closed {closed} keep-alive connections ({answers} answers)"
    assert min(r[2] for r in results) >= 3, sorted(r[2] for r in results)[:5]


def test_a_file_just_over_the_import_limit_gets_the_consoles_message(console):
    """Apache's body limit leaves room for the form around the file: the console refuses it, in its own words."""
    limit = import_max_bytes(console.server.env)
    head = customers_csv("big", 1)
    page = console.admin().preview_import(CUSTOMERS, "big.csv", head + b"x" * (limit + 1 - len(head)))
    assert page.status == 200, (page.status, page.text[-1000:])
    assert f"the limit is {limit / 1_048_576:.0f} MB" in page.text


def test_a_body_far_over_the_limit_gets_a_console_page_not_apaches(console):
    limit = import_max_bytes(console.server.env)
    page = console.admin().preview_import(CUSTOMERS, "huge.csv", b"x" * (limit + 20 * 1_048_576))
    assert page.status == 413
    assert "Data Console" in page.text and "too large" in page.text
    assert "Request Entity Too Large" not in page.text
