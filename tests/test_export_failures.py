"""A failed export fails visibly: the download is cut off, and the audit trail says "failed" with the rows reached.

An export whose database fails mid-stream raises out of the response (so the
server aborts the download), behind a mod_wsgi daemon its body carries its own
chunk framing (so the cut is visible there too), and its transfer record goes
"running" before the first row, then "failed" with the rows reached.  A record
that a killed process left running is failed by the sweep.
"""

import datetime
import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, OperationalError, connections
from django.utils import timezone

from admin_site.models import TransferRecord
from admin_site.transfers import records as audit
from admin_site.transfers.exports import rows as export_rows
from admin_site.transfers.exports.framing import LAST_CHUNK
from admin_site.transfers.uploads import sweep
from console.customers.models import Customer
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url, export_file, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)
#: The MariaDB export reads through its own connection only outside a transaction: rows must be committed.
committed = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

FORMAT = {"csv": "0", "xlsx": "1", "json": "2", "tsv": "3"}
Outcome = TransferRecord.Outcome
RUNNING, SUCCESS, FAILED = Outcome.RUNNING, Outcome.SUCCESS, Outcome.FAILED


def customers(alias, count, notes=""):
    Customer.objects.using(alias).bulk_create(
        [Customer(name=f"Customer {n}", email=f"c{n}@example.com", country="DE", notes=notes) for n in range(count)],
        batch_size=500,
    )


def the_record():
    return TransferRecord.objects.using("users").get()


@pytest.fixture
def fails_after_first_chunk(monkeypatch):
    """The rows reader hands out its first chunk of rows, then the database goes away."""
    monkeypatch.setattr(export_rows, "CHUNK_SIZE", 2)
    original = export_rows._row_chunks

    def failing(*args, **kwargs):
        chunks = original(*args, **kwargs)
        try:
            yield next(chunks)
            raise OperationalError(2013, "Lost connection to MySQL server during query")
        finally:
            chunks.close()

    monkeypatch.setattr(export_rows, "_row_chunks", failing)


def export_post(client, panel, model, file_format, **extra):
    """Post the export form (every field ticked) with extra WSGI environ, e.g. a mod_wsgi daemon's."""
    url = admin_url(panel, model, "export")
    data = {k: v for k, v in form_data(client.get(url).content).items() if k != "csrfmiddlewaretoken"}
    return client.post(url, {**data, "format": FORMAT[file_format]}, **extra)


def consume(response):
    """The chunks the server would send before the response raised, and what it raised (None: it ended)."""
    sent = []
    try:
        for chunk in response.streaming_content:
            sent.append(chunk)
    except DatabaseError as error:
        return sent, error
    return sent, None


# A database error mid-stream -------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "tsv", "json", "xlsx"])
def test_a_database_error_mid_export_propagates_and_fails_the_record_with_the_rows_reached(
    root_client, fails_after_first_chunk, file_format
):
    customers("archive", 7)
    response = export_file(root_client, "archive", Customer, FORMAT[file_format])
    assert response.status_code == 200 and response.streaming
    sent, error = consume(response)
    assert isinstance(error, OperationalError), "the error must leave the response, or the server ends it cleanly"
    assert sent  # the header (and, but for XLSX, the first rows) went out before the failure
    record = the_record()
    assert (record.kind, record.outcome, record.database, record.rows_total) == ("export", FAILED, "archive", 2)
    assert record.message == (
        "The database 'archive' failed: OperationalError 2013 (Lost connection to MySQL server during query)."
    )


def test_the_record_is_running_from_the_first_chunk_and_notes_its_progress_then_succeeds(root_client, monkeypatch):
    customers("archive", 5)
    monkeypatch.setattr(export_rows, "CHUNK_SIZE", 2)
    monkeypatch.setattr(audit, "PROGRESS_EVERY", 0)
    response = export_file(root_client, "archive", Customer, FORMAT["csv"])
    chunks = iter(response.streaming_content)
    next(chunks)  # the header
    assert (the_record().outcome, the_record().rows_total) == (RUNNING, 0)
    next(chunks), next(chunks)  # two chunks of two rows
    assert (the_record().outcome, the_record().rows_total) == (RUNNING, 2)  # noted once the chunk went out
    rest = list(chunks)
    assert len(rest) == 1
    record = the_record()
    assert (record.outcome, record.rows_total, record.message) == (SUCCESS, 5, "")


@committed  # closing the response closes the connections, as at the end of a request
def test_an_abandoned_download_is_recorded_as_stopped(root_client, monkeypatch):
    customers("archive", 5)
    monkeypatch.setattr(export_rows, "CHUNK_SIZE", 2)
    response = export_file(root_client, "archive", Customer, FORMAT["csv"])
    chunks = iter(response.streaming_content)
    next(chunks), next(chunks)
    response.close()  # the client went away: the server closes the response
    record = the_record()
    assert (record.outcome, record.rows_total) == (FAILED, 2)
    assert "client closed the connection" in record.message


@committed
def test_killing_the_streaming_connection_mid_export_fails_the_download_and_the_record(root_client, stream_connections):
    if connections["archive"].vendor != "mysql":
        pytest.skip("a real connection kill needs MariaDB/MySQL")
    # 24 MB of rows: far more than the socket buffers hold, so the server is still sending when it is killed.
    customers("archive", 6000, notes="n" * 4000)
    response = export_file(root_client, "archive", Customer, FORMAT["csv"])
    chunks = iter(response.streaming_content)
    next(chunks), next(chunks)  # the header and the first 1,000 rows
    [stream] = stream_connections
    thread_id = stream.connection.thread_id()
    killer = connections.create_connection("archive")
    try:
        with killer.cursor() as cursor:
            cursor.execute(f"KILL CONNECTION {int(thread_id)}")
    finally:
        killer.close()
    sent, error = [], None
    try:
        sent.extend(chunks)
    except DatabaseError as raised:
        error = raised
    assert isinstance(error, OperationalError), f"the export ended cleanly after {len(sent)} more chunks"
    record = the_record()
    assert record.outcome == FAILED
    assert 1000 <= record.rows_total < 6000
    assert record.message.startswith("The database 'archive' failed: OperationalError")
    assert "SELECT" not in record.message
    assert stream.connection is None  # released


# Behind a mod_wsgi daemon ------------------------------------------------------------------

DAEMON = {"mod_wsgi.process_group": "console", "SERVER_PROTOCOL": "HTTP/1.1"}


def unchunk(body):
    """The payload of a chunked body, and whether it ended with the last chunk."""
    payload, stream = b"", io.BytesIO(body)
    while line := stream.readline():
        size = int(line.strip(), 16)
        if size == 0:
            return payload, stream.read(2) == b"\r\n"
        payload += stream.read(size)
        assert stream.read(2) == b"\r\n"
    return payload, False


def test_behind_a_mod_wsgi_daemon_a_complete_export_frames_its_chunks_and_ends_them(root_client):
    customers("archive", 5)
    plain = b"".join(export_post(root_client, "archive", Customer, "csv").streaming_content)
    response = export_post(root_client, "archive", Customer, "csv", **DAEMON)
    assert response["Transfer-Encoding"] == "chunked" and response["Connection"] == "close"
    assert not response.has_header("Content-Length")
    body = b"".join(response.streaming_content)
    payload, ended = unchunk(body)
    assert ended and body.endswith(LAST_CHUNK)
    assert payload.split(b"\r\n")[1:] == plain.split(b"\r\n")[1:]  # same rows, only the framing differs


def test_behind_a_mod_wsgi_daemon_a_failed_export_never_writes_the_last_chunk(root_client, fails_after_first_chunk):
    customers("archive", 7)
    response = export_post(root_client, "archive", Customer, "csv", **DAEMON)
    sent, error = consume(response)
    assert isinstance(error, OperationalError)
    payload, ended = unchunk(b"".join(sent))
    assert not ended and payload.count(b"\r\n") == 3  # the header and two rows, then the cut
    assert the_record().outcome == FAILED


def test_without_a_mod_wsgi_daemon_the_server_frames_the_body(root_client):
    customers("archive", 1)
    response = export_post(root_client, "archive", Customer, "csv", **{"mod_wsgi.process_group": ""})
    assert not response.has_header("Transfer-Encoding")
    response = export_post(root_client, "archive", Customer, "csv", **{**DAEMON, "SERVER_PROTOCOL": "HTTP/1.0"})
    assert not response.has_header("Transfer-Encoding")  # HTTP/1.0 has no chunks: the connection's end is the body's


# Records a dead process left running -------------------------------------------------------


def running_record(started_ago, duration=0.0, rows=0):
    record = TransferRecord(
        kind="export",
        started_at=timezone.now() - datetime.timedelta(seconds=started_ago),
        duration=duration,
        username="root",
        via="admin",
        database="customers",
        model="customers.Customer",
        rows_total=rows,
        outcome=RUNNING,
    )
    record.save(using="users")
    return record


def test_the_sweep_fails_records_that_a_killed_process_left_running(settings):
    settings.CONSOLE_TRANSFER_STALE_AFTER = 600
    killed = running_record(started_ago=700, duration=30, rows=3000)
    recent = running_record(started_ago=60)
    long_but_alive = running_record(started_ago=2000, duration=1900, rows=90_000)  # noted progress 100 s ago
    out = io.StringIO()
    call_command("sweep_uploads", stdout=out)
    assert "Marked 1 transfer record(s) still running after 600s as failed." in out.getvalue()
    killed.refresh_from_db()
    assert (killed.outcome, killed.rows_total) == (FAILED, 3000)
    assert "process ended during the transfer" in killed.message
    for record in (recent, long_but_alive):
        record.refresh_from_db()
        assert record.outcome == RUNNING
    # Every sweep does it, such as the one each stored upload runs.
    settings.CONSOLE_TRANSFER_STALE_AFTER = 30
    sweep()
    recent.refresh_from_db()
    assert recent.outcome == FAILED


def test_an_import_record_is_running_while_the_import_runs(monkeypatch):
    from admin_site.transfers import imports
    from admin_site.transfers.imports import read_dataset, run_import
    from admin_site.transfers.resources import resource_for

    seen = []
    original = imports.record_result

    def checking(record, result):
        seen.append(TransferRecord.objects.using("users").get(pk=record.pk).outcome)
        return original(record, result)

    monkeypatch.setattr(imports, "record_result", checking)
    data = b"name,email,country\nAnn,ann@example.com,DE\n"
    run_import(resource_for(Customer)(using="customers"), read_dataset(data, "csv"), dry_run=False, via="command")
    assert seen == [RUNNING]
    assert (the_record().kind, the_record().outcome, the_record().rows_new) == ("import", SUCCESS, 1)
