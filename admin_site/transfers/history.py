"""An import's history: one summary entry, and each written row's diff up to a cap (``admin_site.history``)."""

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.core.exceptions import ValidationError
from django.utils.text import capfirst

from admin_site.history import log_rows, log_summary, raw_rows, raw_values, recorded_fields, render_diffs
from admin_site.models import PanelLogEntry


def import_rows_cap():
    """Rows of one import recorded one by one (``CONSOLE_HISTORY_IMPORT_ROWS``)."""
    return getattr(settings, "CONSOLE_HISTORY_IMPORT_ROWS", 1000)


class ImportHistory:
    """Per-row diffs of one import, up to ``import_rows_cap()`` rows, plus a summary entry.

    Before each chunk, the rows the file will update are read in one query;
    after it, the chunk's row results give the new values.  Entries are
    written in bulk once the import has committed.
    """

    TYPES = {"new": ADDITION, "update": CHANGE, "delete": DELETION}

    def __init__(self, resource, user):
        self.resource, self.user = resource, user
        self.model = resource._meta.model
        self.cap = import_rows_cap()
        self.fields = recorded_fields(self.model)
        self.rows = []  # (import_type, object, pk, before, after)
        self.before = {}
        self.capped = False

    def room(self):
        return self.cap - len(self.rows)

    def before_chunk(self, chunk):
        """The stored values of the rows this chunk names by key (within the cap), in one query."""
        if self.room() <= 0:
            return
        pk = self.model._meta.pk
        field = self.resource.fields.get(pk.name)
        headers = chunk.headers or []
        if field is None or field.column_name not in headers:
            return
        keys = [key for key in chunk.get_col(headers.index(field.column_name))[: self.room()] if key not in (None, "")]
        try:
            self.before.update(raw_rows(self.resource.get_queryset().filter(pk__in=keys), self.fields, len(keys)))
        except (ValueError, TypeError, ArithmeticError, ValidationError):
            pass  # keys the column cannot hold: those rows are problems the import reports

    def after_chunk(self, result):
        """Keep the chunk's written rows, up to the cap."""
        for row in result.rows:
            if row.import_type not in self.TYPES:
                continue
            if self.room() <= 0:
                self.capped = True
                break
            obj = row.instance
            if obj is None:
                continue
            key = obj.pk if obj.pk is not None else row.object_id
            before = self.before.pop(key, None) if row.import_type != "new" else None
            after = raw_values(obj, self.fields) if row.import_type != "delete" else None
            if row.import_type == "delete" and before is None:
                before = raw_values(obj, self.fields)
            self.rows.append((row.import_type, obj, key, before, after))
        if self.room() <= 0:
            self.before.clear()

    def write(self, alias, summary, record):
        """The rows' entries and the summary, after the import committed."""
        user_id = self.user.pk
        for import_type, flag in self.TYPES.items():
            rows = [row for row in self.rows if row[0] == import_type]
            if not rows:
                continue
            objects = []
            for _type, obj, key, _before, _after in rows:
                obj.pk = key  # a deleted row has lost its pk; the entry names the row it was
                objects.append(obj)
            diffs = render_diffs(self.model, [(row[3], row[4]) for row in rows], alias)
            log_rows(
                alias,
                user_id,
                objects,
                flag,
                f"{capfirst(import_type)} through import",
                diffs,
                PanelLogEntry.Via.IMPORT,
                record,
            )
        totals = summary.totals
        name = getattr(record, "file_name", "") or "a file"
        note = f" Row changes were recorded for the first {self.cap} rows only (cap reached)." if self.capped else ""
        log_summary(
            alias,
            user_id,
            self.model,
            f"Import of {name}",
            f"Imported {name}: {totals['new']} new, {totals['update']} updated, {totals['delete']} deleted, "
            f"{totals['skip']} unchanged rows.{note}",
            PanelLogEntry.Via.IMPORT,
            record,
        )
