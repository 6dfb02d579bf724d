"""The background worker's task: a big import's preview or confirm, or a big export.

django-tasks' database backend queues ``run_transfer(pk)`` in the users
database; ``manage.py db_worker`` runs it.  The state the progress page shows
is the ``BackgroundTransfer`` row, written by a heartbeat thread on its own
connection, so it is seen from every server process while the import's one
transaction is still open, and it stops moving when the worker dies
(``background.fail_stale`` then marks it failed).  The import itself is
``run_import``, exactly as in a request: one transaction on the transfer's
alias, pinned, all or nothing; a cancel raises inside it and rolls it back.
"""

import logging
import os
import pickle
import threading

from django.apps import apps
from django.db import DatabaseError, connections
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django_tasks import task

from admin_site import replicas
from admin_site.models import BackgroundTransfer
from admin_site.pinning import reading_replicas, using_database
from admin_site.transfers.exports import stream_export
from admin_site.transfers.formats import FileFormatError
from admin_site.transfers.imports import read_dataset, run_import
from admin_site.transfers.records import audited, failure_message
from admin_site.transfers.rowstates import RowStates
from admin_site.transfers.uploads import SharedUploadStorage, export_dir

logger = logging.getLogger(__name__)

#: Seconds between two heartbeats (progress written, cancel flag read).
HEARTBEAT_EVERY = 1.0
CANCELLED = "Cancelled by the user: nothing was written."
Status = BackgroundTransfer.Status


class Cancelled(Exception):
    """The user asked to cancel: raised inside the transfer, so its transaction rolls back."""

    def __init__(self):
        super().__init__(CANCELLED)


class Heartbeat:
    """Write the transfer's progress and read its cancel flag every HEARTBEAT_EVERY seconds, from a thread.

    A thread has its own database connections, so its writes commit at once
    whatever transaction the transfer holds (even an import into the users
    database itself).
    """

    def __init__(self, pk):
        self.pk = pk
        self.rows = 0
        self.record_pk = None
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"transfer-{pk}-heartbeat", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        try:
            while not self._stop.wait(HEARTBEAT_EVERY):
                self.beat()
        finally:
            connections.close_all()  # this thread's connections

    def beat(self):
        """One write of the progress; a transfer no longer running here (cancelled, failed as stale) stops."""
        fields = {"rows_done": self.rows, "heartbeat_at": timezone.now()}
        if self.record_pk is not None:
            fields["record_id"] = self.record_pk
        try:
            running = BackgroundTransfer.objects.filter(pk=self.pk, status=Status.RUNNING)
            if not running.update(**fields) or running.filter(cancel_requested=True).exists():
                self.cancelled.set()
        except DatabaseError:
            logger.warning("Could not note the progress of background transfer %s", self.pk, exc_info=True)

    def flush(self):
        """Write now, on a connection of its own (the record's pk must be known before any row is written)."""
        thread = threading.Thread(target=self._beat_once)
        thread.start()
        thread.join()

    def _beat_once(self):
        try:
            self.beat()
        finally:
            connections.close_all()

    def on_chunk(self, summary, record):
        """``run_import``'s hook: note the rows reached; stop (rolling everything back) if cancelled."""
        self.rows = summary.total_rows
        if record is not None and self.record_pk is None:
            self.record_pk = record.pk
            self.flush()
        if self.cancelled.is_set():
            if record is not None:
                record.message = CANCELLED
            raise Cancelled


def claim(pk):
    """Mark a queued transfer running; None if it is not queued (cancelled meanwhile, or run already)."""
    now = timezone.now()
    if not BackgroundTransfer.objects.filter(pk=pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, rows_done=0
    ):
        return None
    return BackgroundTransfer.objects.select_related("owner").get(pk=pk)


@task()
def run_transfer(pk):
    """Run one background transfer to its end, whatever that is; the row says how it ended."""
    job = claim(pk)
    if job is None:
        return None
    steps = {"preview": preview, "import": confirm, "export": export}
    with Heartbeat(pk) as beat:
        try:
            status, fields = steps[job.stage](job, beat)
        except Cancelled:
            status, fields = Status.CANCELLED, {"message": CANCELLED}
        except Exception as exc:
            logger.exception("Background %s %s failed", job.stage, pk)
            status, fields = Status.FAILED, {"message": failure_message(exc, job.database)}
    if status != Status.PREVIEWED and job.stage != "export":
        SharedUploadStorage(name=job.stored_name, owner=job.owner_id).remove()
    fields.update(rows_done=beat.rows, heartbeat_at=timezone.now())
    if beat.record_pk is not None:
        fields["record_id"] = beat.record_pk
    BackgroundTransfer.objects.filter(pk=pk, status=Status.RUNNING).update(status=status, **fields)
    return status


def model_admin(job):
    """The panel's ModelAdmin for the transfer: its resource, as the request would have used it."""
    from admin_site.sites import all_sites

    return all_sites()[job.database].get_model_admin(apps.get_model(job.model))


def resource(job, classes):
    admin = model_admin(job)
    index = int(job.options.get("resource") or 0)
    return classes(admin)[index](**admin.get_resource_kwargs(None))


def import_rows(job, beat, rows, **options):
    """``run_import`` of the job's file by its owner, through the model admin's import resource, beating per chunk."""
    return run_import(
        resource(job, lambda admin: admin.get_import_resource_classes(None)),
        rows,
        user=job.owner,
        file_name=job.file_name,
        file_format=job.file_format,
        on_chunk=beat.on_chunk,
        **options,
    )


def preview(job, beat):
    """The import's dry run: counts and problems into ``report``; the preview's row states beside the upload."""
    storage = SharedUploadStorage(name=job.stored_name, owner=job.owner_id)
    with using_database(job.database):
        try:
            rows = read_dataset(storage.read(), job.file_format)
        except FileFormatError as exc:
            problem = {"row": None, "column": None, "value": None, "message": str(exc)}
            return Status.REJECTED, {"report": {"problems": [problem]}}
        summary = import_rows(job, beat, rows, dry_run=True, keep_rows=0)
    report = summary_report(summary)
    if summary.problems:
        return Status.REJECTED, {"report": report, "rows_total": summary.total_rows}
    summary.row_states.save(storage.path())
    return Status.PREVIEWED, {"report": report, "rows_total": summary.total_rows}


def confirm(job, beat):
    """The import for real, refusing rows changed since the preview (``rowstates``); its record holds the outcome."""
    storage = SharedUploadStorage(name=job.stored_name, owner=job.owner_id)
    with using_database(job.database):
        rows = read_dataset(storage.read(), job.file_format)
        row_states = RowStates.load(storage.path())
        if row_states is None:
            return Status.REJECTED, {"message": "This upload was not previewed: upload it again."}
        summary = import_rows(job, beat, rows, dry_run=False, row_states=row_states)
    report = summary_report(summary)
    return (Status.REJECTED if summary.problems else Status.DONE), {"report": report}


#: Salt of the HMAC that seals a stored export query (``seal_query``).
QUERY_SALT = "admin_site.transfers.tasks.export-query"


def seal_query(query):
    """``query`` pickled, behind an HMAC of ``SECRET_KEY``: the worker unpickles only what a request wrote.

    The row sits in the users database; without the seal, anyone able to write that table could have
    the worker unpickle (run) whatever they stored.
    """
    data = pickle.dumps(query)
    return salted_hmac(QUERY_SALT, data, algorithm="sha256").digest() + data


def open_query(sealed):
    """The query ``seal_query`` stored; ``ValueError`` when its seal does not match (never unpickled then)."""
    sealed = bytes(sealed)
    mac, data = sealed[:32], sealed[32:]
    if not constant_time_compare(mac, salted_hmac(QUERY_SALT, data, algorithm="sha256").digest()):
        raise ValueError("The stored export query is not one this console wrote.")
    return pickle.loads(data)  # noqa: S301 - sealed by this console's SECRET_KEY (seal_query)


def export(job, beat):
    """Write the export into ``export_dir()``, audited; a cancel or failure leaves no file."""
    model = apps.get_model(job.model)
    queryset = model._default_manager.using(job.database).all()
    queryset.query = open_query(job.query)
    path = export_dir() / job.stored_name
    partial = path.with_name(path.name + ".part")
    positions = replicas.as_session(job.options.get("positions", {}))
    with using_database(job.database), reading_replicas(positions):
        stream = stream_export(
            resource(job, lambda admin: admin.get_export_resource_classes(None)),
            queryset,
            job.file_format,
            selected_fields=job.options.get("fields"),
        )
        with audited(
            "export",
            database=job.database,
            model=model,
            user=job.owner,
            via="admin",
            file_name=job.file_name,
            file_format=job.file_format,
        ) as record:
            beat.record_pk = record.pk
            beat.flush()
            try:
                with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                    for chunk in stream.chunks:
                        out.write(chunk)
                        beat.rows = stream.rows
                        if beat.cancelled.is_set():
                            record.message = CANCELLED
                            raise Cancelled
                os.replace(partial, path)
            finally:
                record.rows_total = stream.rows
                stream.close()
                partial.unlink(missing_ok=True)
            record.message = stream.notice or ""
    return Status.DONE, {"report": {"notice": stream.notice or ""}, "rows_total": stream.rows}


def summary_report(summary):
    """What the progress page shows of an import's result: counts, the first problems, ignored columns."""
    return {
        "totals": {kind: summary.totals[kind] for kind in ("new", "update", "delete", "skip", "invalid", "error")},
        "total_rows": summary.total_rows,
        "problems": [
            {"row": p.row, "column": p.column, "value": None if p.value is None else str(p.value), "message": p.message}
            for p in summary.problems[:200]
        ],
        "problems_over": max(0, len(summary.problems) - 200) + summary.problems_over,
        "stopped_at": summary.stopped_at,
        "ignored_columns": list(summary.ignored_columns),
    }
