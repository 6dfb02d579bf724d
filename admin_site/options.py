"""ModelAdmin and inline bases that keep every admin path on the panel's database.

The site already pins its alias around each request; these bases bind the
same paths explicitly as well, hook by hook, so a ModelAdmin is correct even
when called outside a pinned request.  Each override names the leak it closes
(numbers refer to the list in ``docs/architecture.md``).
"""

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import connections, transaction
from django.db.models.constants import LOOKUP_SEP

from admin_site import history
from admin_site.changelists.filters import bind_list_filter
from admin_site.changelists.options import BigTableListMixin
from admin_site.changelists.values import column_value
from admin_site.concurrency import StaleSaveAdminMixin, StaleSaveInlineMixin
from admin_site.models import PanelLogEntry
from admin_site.pinning import allow_replica_reads, read_database, using_database
from admin_site.secrets import is_secret
from admin_site.transfers.options import DatabaseImportExportMixin


def bind_form(form_class, alias):
    """Subclass ``form_class`` so model validation runs with ``alias`` pinned.

    ``full_clean`` covers FK assignment (allow_relation, #8), field and FK
    validation (#7) and unique/date checks (#6); ``is_valid`` also covers the
    inline DELETE check's collector (#5).
    """
    if getattr(form_class, "bound_database", None) == alias:
        return form_class

    class DatabaseBoundForm(form_class):
        bound_database = alias

        def full_clean(self):
            with using_database(alias):
                super().full_clean()

        def is_valid(self):
            with using_database(alias):
                return super().is_valid()

    DatabaseBoundForm.__name__ = form_class.__name__
    DatabaseBoundForm.__qualname__ = form_class.__qualname__
    return DatabaseBoundForm


class DatabaseBoundMixin:
    """What ModelAdmin and inlines share: queryset, form fields and forms on the alias."""

    @property
    def alias(self):
        return self.admin_site.alias

    def get_queryset(self, request):
        """Changelist, object lookup, inline rows and autocomplete read the panel's alias.

        A list may read one of its replicas (``pinning.read_database``); every other page reads the alias.
        """
        return super().get_queryset(request).using(read_database(self.alias))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Select/raw-id/autocomplete choices from the panel's alias."""
        return super().formfield_for_foreignkey(db_field, request, using=self.alias, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        """M2M choices from the panel's alias."""
        return super().formfield_for_manytomany(db_field, request, using=self.alias, **kwargs)


class DatabaseBindingMixin(DatabaseBoundMixin):
    """Every ModelAdmin path on the panel's database, and a history kept per panel."""

    def get_object(self, request, object_id, from_field=None):
        """Django's look-up; an id the key column cannot hold names no row (SQLite cannot bind it: a 500)."""
        field = self.opts.pk if from_field is None else self.opts.get_field(from_field)
        try:
            column_value(field, object_id, connections[self.alias])
        except ValueError:
            return None
        return super().get_object(request, object_id, from_field)

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The form validates and assigns relations with the alias pinned (#5-#8)."""
        return bind_form(super().get_form(request, obj, change=change, **kwargs), self.alias)

    def get_changelist_form(self, request, **kwargs):
        """A ``list_editable`` row validates and runs its unique checks on the alias (#6-#8)."""
        return bind_form(super().get_changelist_form(request, **kwargs), self.alias)

    def lookup_allowed(self, lookup, value, request=None):
        """No filter on a secret (``?key__startswith=0``): each answer would tell a secret a character at a time."""
        model = self.model
        for part in lookup.split(LOOKUP_SEP):
            if is_secret(model, part):
                return False
            try:
                field = model._meta.get_field(part)
            except FieldDoesNotExist:
                break
            if not field.is_relation:
                break
            model = field.related_model
        return super().lookup_allowed(lookup, value, request)

    def get_list_filter(self, request):
        """Related and all-values filters build their choices on the alias (#1-#3)."""
        return [bind_list_filter(self.model, entry) for entry in super().get_list_filter(request)]

    def save_model(self, request, obj, form, change):
        """Save on the panel's alias, not the router's choice; an unmanaged table's change writes its changes only."""
        if change and not self.opts.managed:
            obj.save(using=self.alias, update_fields=self.get_update_fields(request, obj, form))
        else:
            obj.save(using=self.alias)

    def get_update_fields(self, request, obj, form):
        """The columns a change writes: the fields the form changed, and those Django sets on save (``auto_now``).

        Every other column is left as stored, so a value Django cannot give back
        as it read it (a MySQL zero date, text another character set mangles)
        survives a save that did not touch it.  An override that sets a field in
        ``save_model`` adds that field here.
        """
        changed = set(form.changed_data)
        return [
            field.name
            for field in self.opts.concrete_fields
            if not field.primary_key
            and not field.generated
            and (field.name in changed or getattr(field, "auto_now", False))
        ]

    def delete_model(self, request, obj):
        """Delete on the panel's alias."""
        obj.delete(using=self.alias)

    def delete_queryset(self, request, queryset):
        """Bulk delete on the panel's alias."""
        queryset.using(self.alias).delete()

    def save_formset(self, request, form, formset, change):
        """Inline rows: ``formset.save()`` saves and deletes through the router (#10)."""
        for obj in formset.save(commit=False):
            obj.save(using=self.alias)
        for obj in formset.deleted_objects:
            obj.delete(using=self.alias)
        formset.save_m2m()

    def get_deleted_objects(self, objs, request):
        """The delete collector is built on ``router.db_for_write`` (#5)."""
        with using_database(self.alias):
            return super().get_deleted_objects(objs, request)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Django opens its transaction on ``router.db_for_write`` (#4): pin the alias and open it there first."""
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return super().changeform_view(request, object_id, form_url, extra_context)
        with using_database(self.alias), transaction.atomic(using=self.alias):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        """Django opens its transaction on ``router.db_for_write`` (#4): pin the alias and open it there first."""
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return super().delete_view(request, object_id, extra_context)
        with using_database(self.alias), transaction.atomic(using=self.alias):
            return super().delete_view(request, object_id, extra_context)

    def changelist_view(self, request, extra_context=None):
        """list_editable saves in the panel's transaction, its unique checks pinned (#4, #6).

        Django validates and saves those rows inside ``atomic(router.db_for_write(model))``.  A GET may read a
        replica (``pinning.pin_view``), unless the list is a form (editable rows): a form is never built from a
        copy that may lag.  A POST (actions, list saves) reads and writes the panel's alias.
        """
        if not (self.list_editable and self.has_change_permission(request)):
            allow_replica_reads()
        if request.method == "POST" and "_save" in request.POST:
            with using_database(self.alias), transaction.atomic(using=self.alias):
                return super().changelist_view(request, extra_context)
        return super().changelist_view(request, extra_context)

    # History (#11): LogEntry has no database column; PanelLogEntry records it, and what changed
    # (admin_site.history).

    def construct_change_message(self, request, form, formsets, add=False):
        """Django's message; the fields' before → after wait on the request for the log_* call that follows."""
        message = super().construct_change_message(request, form, formsets, add)
        request.console_changes = history.form_changes(form, self.model, add) + history.formset_changes(formsets)
        return message

    def pending_changes(self, request):
        """The changes ``construct_change_message`` computed for the entry being written."""
        return request.__dict__.pop("console_changes", [])

    def log_addition(self, request, obj, message):
        """Django's entry, tagged with this panel's database and the new values."""
        entry = super().log_addition(request, obj, message)
        history.tag(self.alias, [entry], [self.pending_changes(request)], history.request_via(request))
        return entry

    def log_change(self, request, obj, message):
        """Django's entry, tagged with this panel's database and each field's before → after."""
        entry = super().log_change(request, obj, message)
        history.tag(self.alias, [entry], [self.pending_changes(request)], history.request_via(request))
        return entry

    def log_deletions(self, request, queryset):
        """Django's entries, tagged with this panel's database and each deleted row's values."""
        objects = list(queryset)
        entries = super().log_deletions(request, objects)
        changes = history.deletion_changes(objects, self.alias)
        history.tag(self.alias, entries, changes, PanelLogEntry.Via.DELETE)
        return entries

    def get_actions(self, request):
        """Writing actions record what they changed (delete_selected logs its deletions already)."""
        return history.recording_actions(self, request, super().get_actions(request))

    def history_view(self, request, object_id, extra_context=None):
        """Django's history page; each entry shows the changes this viewer may see."""
        response = super().history_view(request, object_id, extra_context)
        context = getattr(response, "context_data", None) or {}
        if "action_list" in context:
            fields = history.visible_fields(self, request, context["object"])
            for entry in context["action_list"]:
                history.prepare_for_viewer(entry, fields)
        return response

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """The history view paginates every database's entries: keep this panel's, with their changes."""
        if queryset.model is LogEntry:
            queryset = self.admin_site.log_entries_for(queryset).select_related("panel")
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)


class DatabaseAdminMixin(DatabaseBindingMixin, StaleSaveAdminMixin, BigTableListMixin, DatabaseImportExportMixin):
    """The four concerns together; put before a ModelAdmin class (``class A(DatabaseAdminMixin, UserAdmin)``)."""


class DatabaseModelAdmin(DatabaseAdminMixin, admin.ModelAdmin):
    """The ModelAdmin every console panel registers."""


class ReadOnlyAdminMixin:
    """Rows to read, never to add, change or delete (views, audit records)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """A POST may run only an action the list offers (an export); a write action or a list save is refused.

        Django answers an action it does not offer with a redirect and a message: here it is a 403.
        """
        if request.method == "POST" and request.POST.get("action") not in self.get_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)


class DatabaseInlineMixin(DatabaseBoundMixin):
    """Inline rows, their choices and their DELETE check on the panel's alias."""

    def get_formset(self, request, obj=None, **kwargs):
        """Inline forms validate and run their DELETE check with the alias pinned (#5-#8)."""
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = bind_form(formset.form, self.alias)
        return formset


class DatabaseTabularInline(DatabaseInlineMixin, StaleSaveInlineMixin, admin.TabularInline):
    """A tabular inline on the panel's database."""


class DatabaseStackedInline(DatabaseInlineMixin, StaleSaveInlineMixin, admin.StackedInline):
    """A stacked inline on the panel's database."""
