"""Console bookkeeping stored in the console's own database.

``Panel`` anchors the per-panel access permissions (``admin_site.access_<alias>``);
``PanelLogEntry`` records which database an admin log entry belongs to, since
Django's ``LogEntry`` has no such column and two databases share pks, and what
the change was: each field before and after (``admin_site.history``).
"""

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db import models


class Panel(models.Model):
    """One row per configured alias, kept in step with settings after migrate."""

    alias = models.CharField(max_length=64, primary_key=True)
    title = models.CharField(max_length=200)

    class Meta:
        default_permissions = ()

    def __str__(self):
        return self.title


class PanelLogEntry(models.Model):
    """The database an admin ``LogEntry`` was written for, and what changed."""

    class Via(models.TextChoices):
        FORM = "form", "Change form"
        LIST = "list", "List (editable columns)"
        ACTION = "action", "Action"
        IMPORT = "import", "Import"
        DELETE = "delete", "Delete"

    entry = models.OneToOneField(LogEntry, on_delete=models.CASCADE, primary_key=True, related_name="panel")
    database = models.CharField(max_length=64, db_index=True)
    via = models.CharField(max_length=8, choices=Via, blank=True)
    #: Display strings, never raw secrets: [{"field", "label", "before", "after"} | {"field", "label", "secret": true}
    #: | {"inline", "object", "action", "changes": [...]}] (see ``admin_site.history``).
    changes = models.JSONField(default=list, blank=True)
    #: The import an entry belongs to (its summary and its rows).
    transfer = models.ForeignKey("TransferRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        default_permissions = ()

    def __str__(self):
        return f"{self.entry_id} on {self.database}"


class TransferRecord(models.Model):
    """The audit trail of imports and exports: who moved which rows of which database."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"

    class Outcome(models.TextChoices):
        #: Written before the first row; a process that dies mid-transfer leaves it for the sweep to fail.
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        REJECTED = "rejected", "Rejected (nothing written)"
        FAILED = "failed", "Failed (an import wrote nothing; an export stopped short)"

    kind = models.CharField(max_length=8, choices=Kind)
    started_at = models.DateTimeField(db_index=True)
    duration = models.FloatField(help_text="Seconds.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, help_text="Kept when the user is deleted; the OS user for commands.")
    via = models.CharField(max_length=16, help_text="admin or command")
    database = models.CharField(max_length=64, db_index=True)
    model = models.CharField(max_length=100, help_text="app_label.ModelName")
    file_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=16, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_new = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_deleted = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        default_permissions = ("view",)

    def __str__(self):
        return f"{self.get_kind_display()} of {self.model} on {self.database} by {self.username} ({self.outcome})"

    def outcome_summary(self):
        """The outcome in words for this record's kind, with the start of its message when it did not succeed."""
        if self.outcome == self.Outcome.FAILED:
            text = "Failed, nothing written" if self.kind == self.Kind.IMPORT else "Stopped short"
        else:
            text = self.get_outcome_display()
        if self.outcome != self.Outcome.SUCCESS and self.message:
            first = self.message.splitlines()[0]
            text += f": {first[:80]}{'…' if len(first) > 80 else ''}"
        return text


class BackgroundTransfer(models.Model):
    """A big import (preview, then confirm) or export that a worker runs, and what its progress page shows.

    The state lives here, not in a process: the page reads it from any server
    process, survives reloads, and the worker writes it from its heartbeat
    thread (its own connection, outside the import's transaction).  The
    outcome of the import or export itself is its ``record``.
    """

    class Stage(models.TextChoices):
        PREVIEW = "preview", "Preview"
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for the worker"
        RUNNING = "running", "Running"
        #: A preview with no problems, waiting for the user to confirm it.
        PREVIEWED = "previewed", "Previewed"
        DONE = "done", "Done"
        REJECTED = "rejected", "Rejected (nothing written)"
        CANCELLED = "cancelled", "Cancelled (nothing written)"
        FAILED = "failed", "Failed (nothing written)"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    database = models.CharField(max_length=64)
    model = models.CharField(max_length=100, help_text="app_label.ModelName")
    stage = models.CharField(max_length=8, choices=Stage)
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    #: Last time the worker said it is alive; a running transfer not heard from for a while is failed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    rows_total = models.PositiveIntegerField(default=0, help_text="Estimated from the file or the query.")
    rows_done = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    file_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=16, blank=True)
    #: The stored upload (``SharedUploadStorage`` name) or the finished export's file name.
    stored_name = models.CharField(max_length=100, blank=True)
    #: The export's query (a pickled ``QuerySet.query``, Django's documented way to rebuild a queryset,
    #: sealed with an HMAC: ``transfers.tasks.seal_query``)
    #: and the columns chosen on the form.
    query = models.BinaryField(null=True, blank=True)
    options = models.JSONField(default=dict, blank=True)
    #: The preview's report: counts, problems, ignored columns; or the export's notice.
    report = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    record = models.ForeignKey("TransferRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        default_permissions = ()
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_stage_display()} of {self.model} on {self.database} ({self.status})"
