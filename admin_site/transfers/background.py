"""Big imports and exports go to the background worker; their progress page, cancel, confirm and download.

An import whose file holds more than ``CONSOLE_BACKGROUND_IMPORT_ROWS`` rows
(counted cheaply from the upload: line breaks, a workbook's dimension) is
previewed and confirmed by the worker (``tasks.run_transfer``) instead of in
the request, which a proxy cuts off after a minute; so is an export of more
than ``CONSOLE_BACKGROUND_EXPORT_ROWS`` rows.  The request stores the upload
(or the export's query), queues the task and answers with the progress page.

The page reads the ``BackgroundTransfer`` row, so it works from every server
process and survives reloads.  Only the user who started a transfer, or a
superuser, sees it; anyone else gets a 404, as for a transfer that does not
exist.
"""

import datetime
import re
import zipfile
from uuid import uuid4

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connections, router
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from admin_site import replicas
from admin_site.models import BackgroundTransfer
from admin_site.transfers.formats import FileFormatError, check_xlsx
from admin_site.transfers.records import fail_stale_background
from admin_site.transfers.tasks import run_transfer, seal_query
from admin_site.transfers.uploads import SharedUploadStorage, export_dir

Status = BackgroundTransfer.Status
#: Statuses in which the worker still has something to do (the page refreshes itself).
ACTIVE = (Status.QUEUED, Status.RUNNING)
READ_BYTES = 1024 * 1024


def import_threshold():
    return getattr(settings, "CONSOLE_BACKGROUND_IMPORT_ROWS", 20_000)


def export_threshold():
    return getattr(settings, "CONSOLE_BACKGROUND_EXPORT_ROWS", 20_000)


def can_import_in_background(alias):
    """Whether an import into ``alias`` can run in the worker while its progress is written.

    The progress goes to the users database from a second connection.  An
    import into that same database on SQLite holds the file's one write lock
    for its whole transaction, so the progress could not be written: such an
    import (the embedded default's users panel) stays in the request.
    """
    home = router.db_for_write(BackgroundTransfer)
    return alias != home or connections[alias].vendor != "sqlite"


def estimate_rows(upload, file_format):
    """About how many data rows an upload holds, without parsing it: enough to choose where it runs.

    CSV/TSV: line breaks (a quoted cell with a line break counts twice);
    JSON: objects; XLSX: the row elements of its largest worksheet (never its
    declared dimension, which a crafted file sets to a million rows).  A file
    that cannot be read this way counts as 0: the preview in the request then
    says what is wrong with it.
    """
    if file_format == "xlsx":
        try:
            return _xlsx_rows(upload)
        finally:
            upload.seek(0)
    marker = b"{" if file_format == "json" else b"\n"
    count = 0
    for chunk in upload.chunks(READ_BYTES):
        count += chunk.count(marker)
    return count if file_format == "json" else max(0, count - 1)


#: A row element of a worksheet's XML (with or without a namespace prefix).
ROW_ELEMENT = re.compile(rb"<(?:\w+:)?row[\s>/]")


def _xlsx_rows(upload):
    try:
        check_xlsx(upload)  # no zip bomb gets inflated here either
        with zipfile.ZipFile(upload) as archive:
            sheets = [info for info in archive.infolist() if info.filename.startswith("xl/worksheets/sheet")]
            if not sheets:
                return 0
            rows, tail = 0, b""
            with archive.open(max(sheets, key=lambda info: info.file_size)) as sheet:
                while block := sheet.read(READ_BYTES):
                    data = tail + block
                    rows += sum(1 for match in ROW_ELEMENT.finditer(data) if match.end() > len(tail))
                    tail = data[-32:]
            return max(0, rows - 1)
    except (FileFormatError, OSError, zipfile.BadZipFile, EOFError):
        return 0


def start(stage, *, admin, request, **fields):
    """Create the transfer's row, queue its task and answer with its progress page."""
    job = BackgroundTransfer.objects.create(
        owner=request.user,
        database=admin.admin_site.alias,
        model=admin.opts.label,
        stage=stage,
        **fields,
    )
    run_transfer.enqueue(job.pk)
    return HttpResponseRedirect(transfer_url(admin, job))


def start_import(admin, request, storage, *, rows, file_name, file_format, resource):
    return start(
        BackgroundTransfer.Stage.PREVIEW,
        admin=admin,
        request=request,
        rows_total=rows,
        file_name=file_name[:255],
        file_format=file_format,
        stored_name=storage.name,
        options={"resource": resource},
    )


def start_export(admin, request, queryset, *, rows, file_name, file_format, fields, resource):
    return start(
        BackgroundTransfer.Stage.EXPORT,
        admin=admin,
        request=request,
        rows_total=rows,
        file_name=file_name[:255],
        file_format=file_format,
        stored_name=f"{uuid4().hex}-{int(request.user.pk)}",
        query=seal_query(queryset.query),
        # The worker reads a replica only once it holds this user's last writes (admin_site.replicas).
        options={"fields": fields, "resource": resource, "positions": replicas.positions(request.session)},
    )


def transfer_url(admin, job, action=""):
    name = f"{admin.admin_site.name}:{admin.opts.app_label}_{admin.opts.model_name}_transfer{action}"
    return reverse(name, args=[job.pk])


def visible_transfer(admin, request, pk):
    """The transfer, if it belongs to this panel and model and the user started it (or is a superuser); else 404."""
    if pk >= 2**63:
        raise Http404("No such transfer.")  # beyond any pk, and beyond what the database takes as a number
    jobs = BackgroundTransfer.objects.filter(database=admin.admin_site.alias, model=admin.opts.label)
    if not request.user.is_superuser:
        jobs = jobs.filter(owner=request.user)
    fail_stale_background([pk])
    try:
        return jobs.get(pk=pk)
    except BackgroundTransfer.DoesNotExist:
        raise Http404("No such transfer.") from None


def rate_and_eta(job):
    """Rows per second so far and seconds left, from the last heartbeat; None when not known yet."""
    if job.started_at is None or job.heartbeat_at is None or not job.rows_done:
        return None, None
    elapsed = (job.heartbeat_at - job.started_at).total_seconds()
    if elapsed <= 0:
        return None, None
    rate = job.rows_done / elapsed
    left = max(0, job.rows_total - job.rows_done) / rate if job.status == Status.RUNNING else None
    return rate, left


#: Seconds without a heartbeat after which the progress page says the worker is silent (it beats every second).
SILENT_AFTER = 10


def silent_for(job):
    """Seconds since a running transfer's worker was last heard from, when that is long enough to say so."""
    if job.status != Status.RUNNING or job.heartbeat_at is None:
        return None
    silent = (timezone.now() - job.heartbeat_at).total_seconds()
    return round(silent) if silent >= SILENT_AFTER else None


def progress_view(admin, request, pk):
    job = visible_transfer(admin, request, pk)
    rate, left = rate_and_eta(job)
    silent = silent_for(job)
    if silent is not None:
        left = None  # a time left computed from a worker that may be dead would only mislead
    percent = min(100, round(100 * job.rows_done / job.rows_total)) if job.rows_total else None
    download = job.stage == BackgroundTransfer.Stage.EXPORT and job.status == Status.DONE
    context = {
        **admin.admin_site.each_context(request),
        "title": f"{job.get_stage_display()} of {admin.opts.verbose_name_plural}",
        "opts": admin.opts,
        "job": job,
        "active": job.status in ACTIVE,
        "percent": percent,
        "rate": rate,
        "eta": datetime.timedelta(seconds=round(left)) if left is not None else None,
        "silent": silent,
        "heartbeat_timeout": settings.CONSOLE_TRANSFER_HEARTBEAT_TIMEOUT,
        "download_url": transfer_url(admin, job, "_download") if download else None,
        "cancel_url": transfer_url(admin, job, "_cancel"),
        "confirm_url": transfer_url(admin, job, "_confirm"),
        "import_url": reverse(f"{admin.admin_site.name}:{admin.opts.app_label}_{admin.opts.model_name}_import"),
        "changelist_url": reverse(f"{admin.admin_site.name}:{admin.opts.app_label}_{admin.opts.model_name}_changelist"),
    }
    request.current_app = admin.admin_site.name
    return TemplateResponse(request, "admin_site/transfer_progress.html", context)


def cancel_view(admin, request, pk):
    """Cancel: a queued or previewed transfer ends at once; a running one rolls back at the worker's next chunk."""
    job = visible_transfer(admin, request, pk)
    jobs = BackgroundTransfer.objects.filter(pk=job.pk)
    if jobs.filter(status__in=[Status.QUEUED, Status.PREVIEWED]).update(
        status=Status.CANCELLED, message="Cancelled by the user: nothing was written.", heartbeat_at=timezone.now()
    ):
        if job.stage != BackgroundTransfer.Stage.EXPORT:
            SharedUploadStorage(name=job.stored_name, owner=job.owner_id).remove()
    elif jobs.filter(status=Status.RUNNING).update(cancel_requested=True):
        messages.info(request, "Cancelling: everything this transfer wrote is being rolled back.")
    return HttpResponseRedirect(transfer_url(admin, job))


def confirm_view(admin, request, pk):
    """Confirm a background preview that found no problems: the worker imports the file for real."""
    if not admin.has_import_permission(request):
        raise PermissionDenied
    job = visible_transfer(admin, request, pk)
    if job.owner_id != request.user.pk:
        raise PermissionDenied  # an import is made by the user who previewed it
    if BackgroundTransfer.objects.filter(pk=job.pk, status=Status.PREVIEWED, cancel_requested=False).update(
        stage=BackgroundTransfer.Stage.IMPORT, status=Status.QUEUED, rows_done=0, heartbeat_at=None, started_at=None
    ):
        run_transfer.enqueue(job.pk)
    else:
        messages.error(request, "This preview can no longer be confirmed: upload the file again.")
    return HttpResponseRedirect(transfer_url(admin, job))


def download_view(admin, request, pk):
    """The finished export's file, until the sweep removes it (``CONSOLE_IMPORT_MAX_AGE``)."""
    if not admin.has_export_permission(request):
        raise PermissionDenied
    job = visible_transfer(admin, request, pk)
    if job.stage != BackgroundTransfer.Stage.EXPORT or job.status != Status.DONE:
        raise Http404("This export has no file.")
    try:
        handle = (export_dir() / job.stored_name).open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("This export's file has expired: export again.") from None
    return FileResponse(handle, as_attachment=True, filename=job.file_name)
