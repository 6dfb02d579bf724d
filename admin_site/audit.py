"""Record every import and export in the audit trail, however it ends."""

import getpass
import logging
import time
from contextlib import contextmanager

from django.db import DatabaseError
from django.utils import timezone

from admin_site.models import TransferRecord

logger = logging.getLogger(__name__)


@contextmanager
def audited(kind, *, database, model, user=None, via="admin", file_name="", file_format=""):
    """Time the block and write one TransferRecord for it.

    The block fills ``record`` (row counts, ``outcome``, ``message``); an
    exception marks the record failed and propagates.  The record is written
    after the block, outside its transaction, so a rolled-back import still
    leaves its trace.
    """
    record = TransferRecord(
        kind=kind,
        started_at=timezone.now(),
        user=user if user is not None and user.is_authenticated else None,
        username=user.get_username() if user is not None and user.is_authenticated else _os_user(),
        via=via,
        database=database,
        model=f"{model._meta.app_label}.{model.__name__}",
        file_name=(file_name or "")[:255],
        file_format=file_format,
        outcome=TransferRecord.Outcome.SUCCESS,
    )
    started = time.monotonic()
    try:
        yield record
    except BaseException as exc:
        record.outcome = TransferRecord.Outcome.FAILED
        record.message = record.message or f"{type(exc).__name__}: {exc}"[:2000]
        record.duration = time.monotonic() - started
        try:
            record.save()
        except DatabaseError:
            # Never hide why the transfer failed behind why its record failed.
            logger.exception("Could not record the failed %s of %s", kind, record.model)
        raise
    record.duration = time.monotonic() - started
    record.save()


def _os_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
