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
