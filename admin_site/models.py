"""Console bookkeeping stored in the console's own database.

``Panel`` anchors the per-panel access permissions (``admin_site.access_<alias>``);
``PanelLogEntry`` records which database an admin log entry belongs to, since
Django's ``LogEntry`` has no such column and two databases share pks.
"""

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
    """The database an admin ``LogEntry`` was written for."""

    entry = models.OneToOneField(LogEntry, on_delete=models.CASCADE, primary_key=True, related_name="panel")
    database = models.CharField(max_length=64, db_index=True)

    class Meta:
        default_permissions = ()

    def __str__(self):
        return f"{self.entry_id} on {self.database}"
