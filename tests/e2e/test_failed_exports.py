"""A cut-off export looks cut off over real HTTP, under Apache + mod_wsgi in daemon mode.

Two ways an export dies mid-stream, as the fault test found them: its database
connection is killed, and the daemon process is killed.  Either way the client
must see an incomplete chunked body (``http.client.IncompleteRead``: curl's
"transfer closed with outstanding read data"), never a clean end, and the
transfer record must end "failed" with the rows reached, through the sweep
when the process itself died.
"""

import http.client
import os
import signal
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e.conftest import daemon_processes

CUSTOMERS = "/customers/customers/customer/"
#: 6,000 customers of 4 KB: 24 MB, far beyond what socket buffers hold, so the export is mid-stream for sure.
BIG_ROWS, NOTES_BYTES = 6000, 4000
SEED_BIG = f"""
from console.customers.models import Customer
Customer.objects.using("customers").bulk_create(
    [Customer(name=f"Big {{n}}", email=f"e2e-big-{{n}}@example.com", country="DE", notes="n" * {NOTES_BYTES})
     for n in range({BIG_ROWS})],
    batch_size=500,
)
"""


@pytest.fixture(scope="module")
def big_table(console):
    console.runtime.manage("shell", "-c", SEED_BIG, env=console.server.env)
    yield
    console.rows("customers", "DELETE FROM customers_customer WHERE email LIKE %s", "e2e-big-%")


def open_export(client):
    """POST the export form (CSV, every field) and return the response with its body still unread."""
    form = client.get(CUSTOMERS + "export/")
    assert form.status == 200
    fields = {**form.form(), "format": form.option("format", "csv")}
    request = urllib.request.Request(
        client.base_url + CUSTOMERS + "export/",
        data=urllib.parse.urlencode(fields, doseq=True).encode(),
        headers={"Referer": client.base_url + CUSTOMERS + "export/"},
        method="POST",
    )
    response = client._opener.open(request, timeout=60)
    assert response.status == 200 and response.headers["Transfer-Encoding"] == "chunked"
    assert response.read(64 * 1024)  # the header and the first rows
    return response


def read_rest(response):
    """Read the rest of the body: what an HTTP client makes of it."""
    try:
        response.read()
    except http.client.IncompleteRead:
        return "incomplete"
    finally:
        response.close()
    return "complete"


def last_export(console):
    rows = console.rows(
        "users",
        "SELECT id, outcome, rows_total, message FROM admin_site_transferrecord WHERE kind = 'export' "
        "ORDER BY id DESC LIMIT 1",
    )
    return rows[0] if rows else None


def wait_for(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not true after {timeout}s")


def streaming_query(console):
    """The daemon's connection that streams the export's rows (its server-side cursor)."""
    rows = console.rows(
        "customers",
        "SELECT ID FROM information_schema.PROCESSLIST "
        "WHERE DB = %s AND INFO LIKE 'SELECT%%customers_customer%%' AND ID <> CONNECTION_ID()",
        console.databases["customers"],
    )
    return rows[0][0] if rows else None


def test_an_export_whose_database_connection_is_killed_is_an_incomplete_download(console, big_table):
    client = console.admin()
    response = open_export(client)
    thread_id = wait_for(lambda: streaming_query(console))
    console.rows("customers", f"KILL CONNECTION {int(thread_id)}")
    assert read_rest(response) == "incomplete", "the client saw a cleanly ended body"
    _id, outcome, rows_total, message = wait_for(lambda: (r := last_export(console)) and r[1] != "running" and r)
    assert outcome == "failed" and 1000 <= rows_total < BIG_ROWS
    assert message.startswith("The database 'customers' failed: OperationalError"), message
    # The panel works on: the next export is complete.
    assert read_rest(open_export(client)) == "complete"
    assert last_export(console)[1:3] == ("success", BIG_ROWS + wait_for(lambda: demo_count(console)))


def demo_count(console):
    (count,) = console.rows("customers", "SELECT COUNT(*) FROM customers_customer WHERE email NOT LIKE 'e2e-big-%%'")[0]
    return count


def test_an_export_whose_daemon_is_killed_is_an_incomplete_download_and_the_sweep_fails_its_record(console, big_table):
    client = console.admin()
    response = open_export(client)
    pid = int(response.headers["X-Console-Pid"])
    wait_for(lambda: streaming_query(console))
    record_id, outcome, _rows, _message = last_export(console)
    assert outcome == "running"
    os.kill(pid, signal.SIGKILL)
    assert read_rest(response) == "incomplete", "the client saw a cleanly ended body"
    console.server.wait_ready()
    # Apache starts a new daemon in place of the killed one; later tests count on both being there.
    wait_for(lambda: len(daemon_processes(console.server)) >= 2, timeout=60)
    assert last_export(console)[:2] == (record_id, "running")  # nobody was left to finish it
    # Older than CONSOLE_TRANSFER_STALE_AFTER: the sweep knows its process is gone.
    console.rows(
        "users",
        "UPDATE admin_site_transferrecord SET started_at = started_at - INTERVAL 1 DAY WHERE id = %s",
        record_id,
    )
    output = console.runtime.manage("sweep_uploads", env=console.server.env)
    _id, outcome, _rows, message = last_export(console)
    assert outcome == "failed" and "process ended during the transfer" in message, output
