"""Record every import and export in the audit trail, however it ends.

A transfer's record is written as "running" before its first row and updated
when it ends, so a process killed mid-transfer still leaves one;
``fail_stale_transfers`` (run by every sweep) marks such records failed.
"""

import datetime
import getpass
import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from admin_site.models import BackgroundTransfer, TransferRecord

logger = logging.getLogger(__name__)

#: Seconds after which a record still "running" belongs to a dead process: twice mod_wsgi's request-timeout.
TRANSFER_STALE_AFTER = 600
#: At most one progress write per this many seconds (``record_progress``).
PROGRESS_EVERY = 5.0
#: Seconds without a heartbeat after which a background transfer's worker is taken for dead.
HEARTBEAT_TIMEOUT = 60
#: Longest driver message a failure message quotes.
DRIVER_MESSAGE_EXCERPT = 200


def transfer_stale_after():
    """Seconds before the sweep fails a running record (``CONSOLE_TRANSFER_STALE_AFTER``)."""
    return getattr(settings, "CONSOLE_TRANSFER_STALE_AFTER", TRANSFER_STALE_AFTER)


@contextmanager
def audited(kind, *, database, model, user=None, via="admin", file_name="", file_format=""):
    """Time the block and keep one TransferRecord for it: "running" before the block, its outcome after.

    The block fills ``record`` (row counts, ``outcome``, ``message``); left
    running, it ends as a success.  An exception marks the record failed,
    with a short message naming the error, and propagates.  The record is
    written outside the block's transaction, so a rolled-back import still
    leaves its trace.
    """
    record = TransferRecord(
        kind=kind,
        started_at=timezone.now(),
        duration=0,
        user=user if user is not None and user.is_authenticated else None,
        username=user.get_username() if user is not None and user.is_authenticated else _os_user(),
        via=via,
        database=database,
        model=f"{model._meta.app_label}.{model.__name__}",
        file_name=(file_name or "")[:255],
        file_format=file_format,
        outcome=TransferRecord.Outcome.RUNNING,
    )
    started = time.monotonic()
    record.save()
    record.progress_written_at = started
    try:
        yield record
    except BaseException as exc:
        record.outcome = TransferRecord.Outcome.FAILED
        record.message = record.message or failure_message(exc, database)
        record.duration = time.monotonic() - started
        try:
            record.save()
        except DatabaseError:
            # Never hide why the transfer failed behind why its record failed; the sweep fails it later.
            logger.exception("Could not record the failed %s of %s", kind, record.model)
        raise
    if record.outcome == TransferRecord.Outcome.RUNNING:
        record.outcome = TransferRecord.Outcome.SUCCESS
    record.duration = time.monotonic() - started
    record.save()


def record_progress(record, rows):
    """Note ``rows`` on a running record, written at most every PROGRESS_EVERY seconds.

    A process killed mid-transfer leaves the count it had reached.  A failed
    write is logged, not raised: the transfer itself is still fine.
    """
    record.rows_total = rows
    now = time.monotonic()
    if now - getattr(record, "progress_written_at", 0) < PROGRESS_EVERY:
        return
    record.progress_written_at = now
    try:
        TransferRecord.objects.filter(pk=record.pk, outcome=TransferRecord.Outcome.RUNNING).update(
            rows_total=rows, duration=(timezone.now() - record.started_at).total_seconds()
        )
    except DatabaseError:
        logger.warning("Could not note the progress of the %s of %s", record.kind, record.model, exc_info=True)


def failure_message(exc, database):
    """Why a transfer failed, in one line: a database error by class, code and driver message; no SQL or traceback."""
    if isinstance(exc, GeneratorExit):
        return "The transfer stopped before the end: the client closed the connection."
    if not isinstance(exc, DatabaseError):
        return f"{type(exc).__name__}: {exc}"[:2000]
    cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
    code = cause.args[0] if cause.args and isinstance(cause.args[0], int) else None
    message = f"The database '{database}' failed: {type(exc).__name__}" + (f" {code}" if code else "")
    # Connection-level errors say what happened; others (syntax, constraints) may quote SQL or values.
    if isinstance(exc, (OperationalError, InterfaceError)):
        text = str(cause.args[-1] if cause.args else cause).strip().splitlines()
        if text and text[0]:
            message += f" ({text[0][:DRIVER_MESSAGE_EXCERPT]})"
    return message + "."


def fail_stale_transfers(older_than=None):
    """Mark records left running by a process that ended mid-transfer as failed; return how many.

    A record is stale when it was last heard from (its start, plus the
    duration its progress writes noted) more than ``older_than`` seconds
    (default ``transfer_stale_after()``) ago.
    """
    failed = fail_stale_background()
    limit = timezone.now() - datetime.timedelta(seconds=transfer_stale_after() if older_than is None else older_than)
    running = TransferRecord.objects.filter(outcome=TransferRecord.Outcome.RUNNING, started_at__lt=limit)
    # A background transfer's record is as alive as its worker's heartbeat (``fail_stale_background``).
    alive = BackgroundTransfer.objects.filter(status=BackgroundTransfer.Status.RUNNING, record__isnull=False)
    running = running.exclude(pk__in=alive.values("record_id"))
    for pk, started_at, duration in running.values_list("pk", "started_at", "duration"):
        if started_at + datetime.timedelta(seconds=duration) >= limit:
            continue  # still reporting progress
        failed += TransferRecord.objects.filter(pk=pk, outcome=TransferRecord.Outcome.RUNNING).update(
            outcome=TransferRecord.Outcome.FAILED,
            message="The process ended during the transfer (it was stopped, killed or restarted); "
            "the row count is the last one it noted.",
        )
    return failed


def fail_stale_background(pks=None):
    """Fail background transfers (and their records) whose worker has not been heard from; return how many.

    The worker's heartbeat thread notes the time every second or so
    (``tasks.Heartbeat``); ``CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT`` seconds
    (default 60) of silence mean the worker was killed or its host went down.
    Its import, one uncommitted transaction, wrote nothing.
    """
    timeout = getattr(settings, "CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT)
    limit = timezone.now() - datetime.timedelta(seconds=timeout)
    stale = BackgroundTransfer.objects.filter(status=BackgroundTransfer.Status.RUNNING, heartbeat_at__lt=limit)
    if pks is not None:
        stale = stale.filter(pk__in=pks)
    message = (
        "The worker stopped during the transfer (it was killed, or its host went down): nothing was written. "
        "Start it again."
    )
    failed = 0
    for pk, record_pk in stale.values_list("pk", "record_id"):
        if BackgroundTransfer.objects.filter(pk=pk, status=BackgroundTransfer.Status.RUNNING).update(
            status=BackgroundTransfer.Status.FAILED, message=message
        ):
            failed += 1
            if record_pk is not None:
                TransferRecord.objects.filter(pk=record_pk, outcome=TransferRecord.Outcome.RUNNING).update(
                    outcome=TransferRecord.Outcome.FAILED, message=message
                )
    return failed


def _os_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
