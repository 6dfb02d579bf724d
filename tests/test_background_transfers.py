"""Big imports and exports run in the background worker, with a progress page (``admin_site.transfers.background``).

The threshold is set low, so a file of a dozen rows goes to the worker.  The
worker is django-tasks' ``db_worker``: run in this process (its ``Worker``
class, in a thread when the test acts while it runs) or, to be killed, as a
subprocess.  These tests commit (the worker's threads read what the request
wrote), so they use transactional test databases.
"""

import datetime
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker

from admin_site.models import BackgroundTransfer, TransferRecord
from admin_site.transfers import imports, tasks
from admin_site.transfers.formats import IMPORT_FORMATS
from admin_site.transfers.resources import DatabaseModelResource
from admin_site.transfers.uploads import export_dir, sweep, upload_dir
from console.customers.models import Customer
from console.profiles.models import Team
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url, capture_queries, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

FORMAT = {cls.__name__.lower(): str(i) for i, cls in enumerate(IMPORT_FORMATS)}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def low_thresholds(settings):
    settings.CONSOLE_BACKGROUND_IMPORT_ROWS = 5
    settings.CONSOLE_BACKGROUND_EXPORT_ROWS = 5


def customers_csv(rows, start=0):
    lines = ["name,email,country,status,tier"]
    lines += [f"Person {i},person{i}@example.com,DE,active,gold" for i in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(client, panel, content, name="customers.csv"):
    return client.post(
        admin_url(panel, Customer, "import"),
        {"format": FORMAT[name.rsplit(".", 1)[-1]], "import_file": SimpleUploadedFile(name, content)},
    )


def run_worker():
    """Run every queued task to its end in this thread, as ``manage.py db_worker --batch`` does."""
    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    ).run()


def job_of(response):
    assert response.status_code == 302, response.content[:500]
    pk = int(response["Location"].rstrip("/").rsplit("/", 1)[-1])
    return BackgroundTransfer.objects.get(pk=pk)


def wait_for(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def counts():
    return {alias: Customer.objects.using(alias).count() for alias in ("customers", "archive")}


@pytest.fixture
def slow_chunks(monkeypatch):
    """Chunks of 10 rows, each taking a while, and a fast heartbeat: an import that can be watched and cancelled."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 10)
    monkeypatch.setattr(tasks, "HEARTBEAT_EVERY", 0.05)
    original = DatabaseModelResource.import_chunk

    def slow(self, dataset, dry_run, **kwargs):
        time.sleep(0.15)
        return original(self, dataset, dry_run, **kwargs)

    monkeypatch.setattr(DatabaseModelResource, "import_chunk", slow)


# -- the whole path ------------------------------------------------------------------------


@pytest.mark.parametrize("panel", ["customers", "archive"])
def test_a_big_file_is_previewed_then_imported_by_the_worker_into_the_panel_only(root_client, panel):
    response = upload(root_client, panel, customers_csv(12))
    job = job_of(response)
    assert (job.stage, job.status, job.database, job.rows_total) == ("preview", "queued", panel, 12)
    page = root_client.get(response["Location"])
    assert b"Waiting for the background worker" in page.content
    assert counts() == {"customers": 0, "archive": 0}

    run_worker()
    page = root_client.get(response["Location"])
    assert page.context["job"].status == "previewed"
    assert b"12 new" in page.content and b"Nothing has been written yet" in page.content
    assert b'id="transfer-confirm"' in page.content
    assert counts() == {"customers": 0, "archive": 0}, "a preview writes nothing"
    assert not TransferRecord.objects.exists()

    root_client.post(admin_url(panel, Customer, "transfer_confirm", job.pk))
    job.refresh_from_db()
    assert (job.stage, job.status) == ("import", "queued")
    run_worker()
    job.refresh_from_db()
    assert job.status == "done", job.message
    other = "archive" if panel == "customers" else "customers"
    assert counts() == {panel: 12, other: 0}
    record = TransferRecord.objects.get()
    assert job.record_id == record.pk
    assert (record.kind, record.database, record.outcome, record.rows_new, record.username) == (
        "import",
        panel,
        "success",
        12,
        "root",
    )
    assert b"Imported into" in root_client.get(response["Location"]).content
    assert not any(upload_dir().iterdir()), "the imported upload is removed"


@pytest.mark.parametrize("fmt", ["xlsx", "json", "tsv"])
def test_big_files_of_every_format_are_counted_and_previewed_by_the_worker(root_client, fmt):
    header, *rows = [line.split(",") for line in customers_csv(12).decode().splitlines()]
    if fmt == "xlsx":
        book = openpyxl.Workbook()
        for row in [header, *rows]:
            book.active.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        content = buffer.getvalue()
    elif fmt == "json":
        content = json.dumps([dict(zip(header, row, strict=True)) for row in rows]).encode()
    else:
        content = "".join("\t".join(row) + "\n" for row in [header, *rows]).encode()
    job = job_of(upload(root_client, "customers", content, name=f"customers.{fmt}"))
    assert job.rows_total == 12
    run_worker()
    job.refresh_from_db()
    assert (job.status, job.report["totals"]["new"]) == ("previewed", 12)


def test_an_import_into_the_users_database_goes_to_the_worker_except_on_sqlite(root_client):
    """On SQLite the import would hold the users file's one write lock, which its progress needs."""
    content = ("name,description\n" + "".join(f"Team {i},\n" for i in range(12))).encode()
    response = root_client.post(
        admin_url("users", Team, "import"),
        {"format": FORMAT["csv"], "import_file": SimpleUploadedFile("teams.csv", content)},
    )
    if connections["users"].vendor == "sqlite":
        assert response.status_code == 200 and b"12 new" in response.content
        assert not BackgroundTransfer.objects.exists()
        return
    job = job_of(response)
    run_worker()
    root_client.post(admin_url("users", Team, "transfer_confirm", job.pk))
    run_worker()
    job.refresh_from_db()
    assert job.status == "done", job.message
    assert Team.objects.using("users").count() == 12


def test_a_small_file_is_still_previewed_in_the_request(root_client):
    form = root_client.get(admin_url("customers", Customer, "import"))
    assert "more than 5 rows is checked and imported by the background worker" in form.content.decode()
    response = upload(root_client, "customers", customers_csv(5))
    assert response.status_code == 200
    assert b"5 new" in response.content
    assert not BackgroundTransfer.objects.exists()


def test_a_big_file_with_problems_is_rejected_by_the_preview_with_each_problem(root_client):
    content = customers_csv(12).replace(b"person3@example.com", b"not-an-email")
    job = job_of(upload(root_client, "customers", content))
    run_worker()
    job.refresh_from_db()
    assert job.status == "rejected"
    page = root_client.get(admin_url("customers", Customer, "transfer", job.pk))
    assert b"not-an-email" in page.content and b"Nothing was imported" in page.content
    assert b'id="transfer-confirm"' not in page.content
    assert root_client.post(admin_url("customers", Customer, "transfer_confirm", job.pk)).status_code == 302
    job.refresh_from_db()
    assert job.status == "rejected", "a rejected preview cannot be confirmed"
    assert counts()["customers"] == 0
    assert not any(upload_dir().iterdir())


# -- progress and cancel ----------------------------------------------------------------------


def test_progress_moves_and_cancel_rolls_back_every_row(root_client, slow_chunks):
    location = upload(root_client, "customers", customers_csv(200))["Location"]
    run_worker()  # the preview
    job = BackgroundTransfer.objects.get()
    assert job.status == "previewed"
    root_client.post(admin_url("customers", Customer, "transfer_confirm", job.pk))

    worker = threading.Thread(target=run_worker)
    worker.start()
    try:
        first = wait_for(
            lambda: BackgroundTransfer.objects.filter(rows_done__gt=0).values_list("rows_done", flat=True).first()
        )
        later = wait_for(
            lambda: BackgroundTransfer.objects.filter(rows_done__gt=first).values_list("rows_done", flat=True).first()
        )
        assert first < later < 200
        page = root_client.get(location)
        assert page.context["job"].status == "running"
        assert page.context["rate"] and page.context["eta"] is not None
        assert b'http-equiv="refresh"' in page.content, "a running transfer's page reloads itself"
        root_client.post(admin_url("customers", Customer, "transfer_cancel", job.pk))
    finally:
        worker.join(60)
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert counts()["customers"] == 0, "the rows imported before the cancel were rolled back"
    record = TransferRecord.objects.get(pk=job.record_id)
    assert (record.outcome, record.message) == ("failed", tasks.CANCELLED)
    assert b"Cancelled" in root_client.get(location).content


def test_cancelling_a_queued_or_previewed_transfer_ends_it_and_removes_the_upload(root_client):
    job = job_of(upload(root_client, "customers", customers_csv(12)))
    root_client.post(admin_url("customers", Customer, "transfer_cancel", job.pk))
    job.refresh_from_db()
    assert job.status == "cancelled"
    run_worker()  # the queued task finds nothing to do
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert counts()["customers"] == 0
    assert not any(upload_dir().iterdir())


def test_an_import_that_ended_without_writing_does_not_show_the_previews_counts_as_its_outcome(root_client):
    """A cancelled (or failed) confirm keeps the preview's report: the page says it is the preview's, none written."""
    location = upload(root_client, "customers", customers_csv(12))["Location"]
    run_worker()  # the preview
    job = BackgroundTransfer.objects.get()
    root_client.post(admin_url("customers", Customer, "transfer_confirm", job.pk))
    root_client.post(admin_url("customers", Customer, "transfer_cancel", job.pk))  # still queued: ends at once
    page = root_client.get(location)
    assert (page.context["job"].stage, page.context["job"].status) == ("import", "cancelled")
    totals = re.search(rb'<p id="import-totals">(.*?)</p>', page.content, re.S).group(1)
    text = b" ".join(re.sub(rb"<[^>]+>", b"", totals).split())
    assert text.startswith(b"The preview counted, for database customers: 12 new"), text
    assert text.endswith(b"None of it was written."), text
    assert counts()["customers"] == 0


@pytest.mark.skipif(
    not os.environ.get("CONSOLE_TEST_DATABASE_URL"),
    reason="a killed worker needs a test database another process can open (SQLite's test databases are in memory)",
)
def test_a_worker_killed_mid_import_leaves_no_rows_and_the_transfer_failed(root_client, settings, tmp_path):
    location = upload(root_client, "customers", customers_csv(300))["Location"]
    run_worker()  # the preview, in this process
    job = BackgroundTransfer.objects.get()
    root_client.post(admin_url("customers", Customer, "transfer_confirm", job.pk))
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "background_worker.py")],
        cwd=ROOT,
        env={**os.environ, "CONSOLE_IMPORT_DIR": str(settings.CONSOLE_IMPORT_DIR)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: BackgroundTransfer.objects.filter(rows_done__gt=0, record__isnull=False).exists(), 60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    job.refresh_from_db()
    assert job.status == "running", "nobody has noticed yet"
    assert counts()["customers"] == 0
    settings.CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT = 1
    time.sleep(1.5)
    page = root_client.get(location)
    assert page.context["job"].status == "failed"
    assert b"The worker stopped during the transfer" in page.content
    record = TransferRecord.objects.get(pk=job.record_id)
    assert record.outcome == "failed"
    assert counts()["customers"] == 0


def test_a_stale_running_transfer_is_failed_only_after_the_timeout(root_client, settings):
    job = job_of(upload(root_client, "customers", customers_csv(12)))
    BackgroundTransfer.objects.filter(pk=job.pk).update(status="running", heartbeat_at=job.created_at)
    settings.CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT = 3600
    assert root_client.get(admin_url("customers", Customer, "transfer", job.pk)).context["job"].status == "running"
    settings.CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT = 0
    assert root_client.get(admin_url("customers", Customer, "transfer", job.pk)).context["job"].status == "failed"


def test_a_running_transfer_whose_worker_went_silent_says_so_instead_of_a_frozen_time_left(root_client, settings):
    job = job_of(upload(root_client, "customers", customers_csv(12)))
    settings.CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT = 3600
    now = timezone.now()
    BackgroundTransfer.objects.filter(pk=job.pk).update(
        status="running", started_at=now - datetime.timedelta(seconds=10), heartbeat_at=now, rows_done=5, rows_total=12
    )
    page = root_client.get(admin_url("customers", Customer, "transfer", job.pk)).content.decode()
    assert 'id="transfer-eta"' in page and "not been heard from" not in page
    BackgroundTransfer.objects.filter(pk=job.pk).update(heartbeat_at=now - datetime.timedelta(seconds=30))
    page = root_client.get(admin_url("customers", Customer, "transfer", job.pk)).content.decode()
    assert 'id="transfer-eta"' not in page
    assert "The worker has not been heard from for 30 seconds" in page and "after 3600 seconds" in page


# -- exports ----------------------------------------------------------------------------------


def export(client, panel, **query):
    """Post the export form as a browser would (every field ticked, CSV), from the list's address."""
    url = admin_url(panel, Customer, "export", **query)
    data = {k: v for k, v in form_data(client.get(url).content).items() if k != "csrfmiddlewaretoken"}
    return client.post(url, {**data, "format": "0"})


def seed(count, alias="customers"):
    Customer.objects.using(alias).bulk_create(
        [Customer(name=f"Exported {i}", email=f"exported{i}@example.com", country="FR") for i in range(count)]
    )


def test_a_big_export_is_written_by_the_worker_and_downloaded_from_its_page(root_client):
    seed(30)
    seed(3, "archive")
    response = export(root_client, "customers")
    job = job_of(response)
    assert (job.stage, job.rows_total) == ("export", 30)
    run_worker()
    job.refresh_from_db()
    assert job.status == "done", job.message
    page = root_client.get(response["Location"])
    assert b'id="transfer-download"' in page.content
    stored = export_dir() / job.stored_name
    assert stored.is_file() and stored.parent.parent == Path(settings.CONSOLE_IMPORT_DIR).parent
    download = root_client.get(admin_url("customers", Customer, "transfer_download", job.pk))
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert len(lines) == 31 and lines[0].startswith("id,")
    assert sum("Exported" in line for line in lines) == 30
    record = TransferRecord.objects.get(pk=job.record_id)
    assert (record.kind, record.database, record.outcome, record.rows_total) == ("export", "customers", "success", 30)


def test_a_stored_export_query_that_was_tampered_with_is_never_unpickled(root_client, monkeypatch):
    seed(30)
    job = job_of(export(root_client, "customers"))
    tampered = bytearray(job.query)
    tampered[-5] ^= 0xFF  # a change to the pickle behind the seal
    BackgroundTransfer.objects.filter(pk=job.pk).update(query=bytes(tampered))
    unpickled = []
    monkeypatch.setattr(tasks.pickle, "loads", lambda data: unpickled.append(data))

    run_worker()

    job.refresh_from_db()
    assert job.status == "failed"
    assert unpickled == []
    assert not (export_dir() / job.stored_name).exists()


def test_a_big_export_keeps_the_lists_filters(root_client):
    seed(30)
    Customer.objects.using("customers").filter(name__endswith="7").update(country="IT")
    response = export(root_client, "customers", country__exact="FR")
    job = job_of(response)
    assert job.rows_total == 27
    run_worker()
    download = root_client.get(admin_url("customers", Customer, "transfer_download", job.pk))
    body = b"".join(download.streaming_content).decode()
    assert body.count("Exported") == 27 and ",IT," not in body


def test_export_files_are_swept_like_uploads_and_then_a_404_not_a_500(root_client):
    seed(30)
    job = job_of(export(root_client, "customers"))
    run_worker()
    job.refresh_from_db()
    sweep()
    assert (export_dir() / job.stored_name).is_file(), "a fresh export stays"
    sweep(older_than=-1)
    assert not (export_dir() / job.stored_name).exists()
    assert root_client.get(admin_url("customers", Customer, "transfer_download", job.pk)).status_code == 404


# -- who may see it -----------------------------------------------------------------------------


def test_another_user_can_neither_see_nor_cancel_nor_download_it(root_client):
    seed(30)
    exported = job_of(export(root_client, "customers"))
    run_worker()
    imported = job_of(upload(root_client, "customers", customers_csv(12)))
    other = User.objects.db_manager("users").create_user("eve", password="pw", is_staff=True)
    other.user_permissions.set(
        Permission.objects.using("users").filter(
            codename__in=["access_customers", "add_customer", "change_customer", "view_customer"]
        )
    )
    client = Client()
    client.force_login(other)
    assert client.get(admin_url("customers", Customer, "changelist")).status_code == 200
    for view in ("transfer", "transfer_download"):
        assert client.get(admin_url("customers", Customer, view, exported.pk)).status_code == 404
    assert client.get(admin_url("customers", Customer, "transfer", imported.pk)).status_code == 404
    for view in ("transfer_cancel", "transfer_confirm"):
        assert client.post(admin_url("customers", Customer, view, imported.pk)).status_code == 404
    imported.refresh_from_db()
    assert (imported.status, imported.cancel_requested) == ("queued", False)
    # Another panel's URL for the same transfer is a 404 too, even for its owner.
    assert root_client.get(admin_url("archive", Customer, "transfer", imported.pk)).status_code == 404
    # A superuser sees it.
    assert root_client.get(admin_url("customers", Customer, "transfer", imported.pk)).status_code == 200


def test_a_crafted_transfer_address_is_a_404(root_client):
    assert root_client.get(admin_url("customers", Customer, "transfer", 999999)).status_code == 404
    assert root_client.get("/customers/customers/customer/transfers/99999999999999999999999/").status_code == 404
    assert root_client.get(admin_url("customers", Customer, "transfer_cancel", 1)).status_code == 405


# -- pinning in the worker ----------------------------------------------------------------------


@pytest.mark.parametrize("panel", ["customers", "archive"])
def test_the_worker_queries_only_the_transfers_database(root_client, panel):
    """Preview, confirm and export in the worker: no query reaches another panel's database.

    The console's own database holds the queue, the transfer's row, its audit
    record and the import's history; nothing of the panel's tables goes there.
    """
    job = job_of(upload(root_client, panel, customers_csv(12)))
    with capture_queries() as log:
        run_worker()
    assert not log.leaks_from(panel), log.leaks_from(panel)
    assert any("customers_customer" in sql for sql in log.on(panel))
    root_client.post(admin_url(panel, Customer, "transfer_confirm", job.pk))
    with capture_queries() as log:
        run_worker()
    assert not log.leaks_from(panel), log.leaks_from(panel)
    assert log.writes_on(panel)
    other = "archive" if panel == "customers" else "customers"
    assert counts() == {panel: 12, other: 0}
    exported = job_of(export(root_client, panel))
    with capture_queries() as log:
        run_worker()
    exported.refresh_from_db()
    assert exported.status == "done"
    assert not log.leaks_from(panel), log.leaks_from(panel)
