"""Admin pages for models whose primary key is composite, and read-only lists of tables without a key.

Django 5.2's admin refuses composite primary keys (``AdminSite.register``
raises for ``_meta.is_composite_pk``) because it writes ``quote(obj.pk)``
into URLs, ``str(obj.pk)`` into action checkboxes and ``LogEntry.object_id``,
and reads the key back with ``pk.to_python``.  This module is the smallest
layer that makes a page work anyway.

**The key in URLs** is ``quote(pk.value_to_string(obj))``: Django's own text
form of a composite key (a JSON list of each field's ``value_to_string``,
which ``CompositePrimaryKey.to_python`` parses back) escaped with the admin's
``quote()``, exactly as Django's open plan for admin support (ticket #35953)
writes it.  JSON round-trips any text (``/``, ``,``, ``%``, ``"``, ``_``,
non-ASCII) and each part is the field's own serialisation, so dates, decimals
and booleans come back as the field parses them; ``quote()`` keeps ``/`` and
``_`` out of the path.  ``parse_key`` is stricter than ``to_python``: a list of
exactly one string per key field, each one a value its column can hold;
anything else is a 404.  The same text is the ``LogEntry.object_id`` (so the
history page, which filters on ``unquote(object_id)``, and
``LogEntry.get_admin_url`` work) and the action checkbox's value.

**Key fields** are editable on the add form and read-only on the change form:
a different key is a different row.

What Django would need for this layer to be dropped (then delete this module,
its templates and ``adapters.django.register_composite_key_admin``):

* ``AdminSite.register`` accepting ``is_composite_pk`` models;
* one key serialisation used everywhere the admin writes a key —
  ``ChangeList.url_for_result``, ``ModelAdmin.action_checkbox``,
  ``response_add``, ``get_deleted_objects``' links, ``LogEntry.object_id``
  (``log_actions``), the templates' ``original.pk|admin_urlquote``
  (``change_form_object_tools``, ``submit_line``, ``delete_confirmation``,
  ``object_history``) and ``delete_selected_confirmation``'s hidden inputs;
* ``get_object`` and ``response_action`` parsing that serialisation
  (``pk__in`` with the parsed tuples), a malformed key being "no object";
* ``ChangeList``'s deterministic ordering appending the key *fields* rather
  than ``-pk``.

Models whose table has **no key at all** declare a ``CompositePrimaryKey``
over their columns (see ``console.legacy.models.StockMove``) and are served by
``KeylessAdminMixin``: listed, filtered and exported, nothing else.
"""

import json
from urllib.parse import quote as urlquote

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.db import connections
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from admin_site.adapters.django import register_composite_key_admin
from admin_site.changelists.values import column_value


def is_composite(model):
    """Whether ``model``'s primary key spans several fields."""
    return model._meta.is_composite_pk


def register(site, model, admin_class=None, **options):
    """Register a composite-key ``model`` on ``site`` (``AdminSite.register`` refuses it); False for any other model.

    ``admin_class`` and ``options`` as ``AdminSite.register`` takes them.
    """
    if not is_composite(model):
        return False
    admin_class = admin_class or ModelAdmin
    if options:
        options["__module__"] = __name__
        admin_class = type(f"{model.__name__}Admin", (admin_class,), options)
    register_composite_key_admin(site, model, admin_class)
    return True


def key_text(obj):
    """The row's key as text: ``str(pk)``, or for a composite key Django's JSON list of its parts."""
    if is_composite(type(obj)):
        return obj._meta.pk.value_to_string(obj)
    return str(obj.pk)


def url_key(obj):
    """The row's key as it goes into an admin URL (``quote()``-escaped)."""
    return quote(key_text(obj))


def parse_key(model, text, connection):
    """The key tuple ``text`` (a ``key_text``) names; ValueError unless it is one string per key field, each valid."""
    fields = model._meta.pk.fields
    try:
        parts = json.loads(text)
    except (ValueError, TypeError, RecursionError) as error:
        raise ValueError("not a key") from error
    if not isinstance(parts, list) or len(parts) != len(fields) or not all(isinstance(p, str) for p in parts):
        raise ValueError("not a key")
    if not all(is_unicode(part) for part in parts):
        raise ValueError("not a key")  # JSON's "\\ud800" escape: a lone surrogate no driver can send
    return tuple(column_value(field, part, connection) for field, part in zip(fields, parts, strict=True))


def is_unicode(text):
    """Whether ``text`` can be encoded as UTF-8 (JSON decodes an unpaired ``\\ud800`` into a str that cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def change_url(model_admin, obj):
    opts = model_admin.opts
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change",
        args=(url_key(obj),),
        current_app=model_admin.admin_site.name,
    )


def fix_log_entries(entries, objects):
    """Store ``key_text`` as the ``object_id`` of LogEntries Django wrote with ``str(tuple)``; one per object."""
    for entry, obj in zip(entries, objects, strict=True):
        if entry is not None and is_composite(type(obj)):
            entry.object_id = key_text(obj)
            entry.save(update_fields=["object_id"])


def key_ordering(ordering, opts):
    """``ordering`` without Django's ``pk``/``-pk`` tie-breaker, ending with every key field: a total order."""
    kept, named = [], set()
    for item in ordering:
        name = item.lstrip("-") if isinstance(item, str) else None
        if name == "pk" or name in named:
            continue  # Django's tie-breaker, or a column already ordered by (Meta.ordering repeated)
        if name is not None:
            named.add(name)
        kept.append(item)
    return kept + [field.name for field in opts.pk.fields if field.name not in named]


def new_key_form(form_class, model, alias):
    """``form_class`` refusing a key ``alias`` already holds: Django's ``save()`` would overwrite that row.

    Django 5.2's unique checks skip a composite primary key, and ``save()`` of an instance
    whose key is set tries an UPDATE first.
    """

    class NewKeyForm(form_class):
        def clean(self):
            cleaned = super().clean()
            fields = model._meta.pk.fields
            if all(cleaned.get(field.name) not in (None, "") for field in fields):
                key = tuple(cleaned[field.name] for field in fields)
                if model._default_manager.using(alias).filter(pk=key).exists():
                    names = " and ".join(str(field.verbose_name) for field in fields)
                    raise ValidationError(
                        f"{capfirst(model._meta.verbose_name)} with this {names} already exists.", code="unique"
                    )
            return cleaned

    NewKeyForm.__name__ = form_class.__name__
    return NewKeyForm


def add_or_update(resource_class):
    """``resource_class`` named for what it does on the import form's choice, not by its Python class."""

    class AddOrUpdateResource(resource_class):
        @classmethod
        def get_display_name(cls):
            return "Add new rows and update existing ones (matched on the key)"

    AddOrUpdateResource.__name__ = resource_class.__name__
    return AddOrUpdateResource


def update_only(resource_class):
    """``resource_class`` for files that change existing rows only: a row whose key matches none is a row error.

    The import is all or nothing, so such a row keeps every row of the file from being written.
    """

    class UpdateOnlyResource(resource_class):
        #: A file may leave out any column but the key's (``check_headers``).
        updates_only = True

        @classmethod
        def get_display_name(cls):
            return "Update existing rows only (matched on the key)"

        def init_instance(self, row=None):
            model = self._meta.model
            parts = []
            for name in self._meta.import_id_fields:
                column = self.fields[name].column_name
                parts.append(f"{model._meta.get_field(name).verbose_name} {str((row or {}).get(column, ''))[:80]!r}")
            raise ValidationError(
                f"No {model._meta.verbose_name} with {' and '.join(parts)} in this database: "
                "this import only updates existing rows."
            )

    UpdateOnlyResource.__name__ = f"UpdateOnly{resource_class.__name__}"
    return UpdateOnlyResource


def composite_changelist(base):
    """``base`` (a ChangeList class) linking rows by ``url_key`` and ordered by the key fields."""

    class CompositeKeyChangeList(base):
        def url_for_result(self, result):
            return change_url(self.model_admin, result)

        def get_ordering(self, request, queryset):
            return key_ordering(super().get_ordering(request, queryset), self.lookup_opts)

    CompositeKeyChangeList.__name__ = f"CompositeKey{base.__name__}"
    return CompositeKeyChangeList


class CompositeKeyAdminMixin:
    """Put before ``DatabaseModelAdmin`` for a model with a ``CompositePrimaryKey``."""

    change_form_template = "admin_site/composite/change_form.html"
    delete_confirmation_template = "admin_site/composite/delete_confirmation.html"
    object_history_template = "admin_site/composite/object_history.html"
    delete_selected_confirmation_template = "admin_site/composite/delete_selected_confirmation.html"
    #: import-export's "export this row" posts ``pk`` values back as text, which ``pk__in`` cannot read.
    show_change_form_export = False

    def get_changelist(self, request, **kwargs):
        return composite_changelist(super().get_changelist(request, **kwargs))

    def get_actions(self, request):
        """Delete selected (and any other action); not import-export's "export selected" (it posts ``str(pk)``)."""
        actions = super().get_actions(request)
        actions.pop("export_admin_action", None)
        return actions

    def get_resource_classes(self, request):
        """Rows matched on every key field: added or updated, or (the second choice) updated only."""
        classes = list(super().get_resource_classes(request))
        return [add_or_update(classes[0]), *classes[1:], update_only(classes[0])]

    def get_export_resource_classes(self, request):
        return list(super().get_resource_classes(request))[:1]

    def get_object(self, request, object_id, from_field=None):
        """The row ``object_id`` (a ``key_text``) names, on the panel's alias; a malformed key is a 404."""
        if from_field is not None:
            raise Http404("A row with a composite key is named by its key only.")
        try:
            key = parse_key(self.model, object_id, connections[self.admin_site.alias])
        except ValueError:
            raise Http404("That is not a key of this table.") from None
        try:
            return self.get_queryset(request).get(pk=key)
        except self.model.DoesNotExist:
            return None

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The add form refuses a key the table already holds (a form error, not an overwritten row)."""
        form = super().get_form(request, obj, change=change, **kwargs)
        return form if obj is not None else new_key_form(form, self.model, self.admin_site.alias)

    def save_model(self, request, obj, form, change):
        """An added row is INSERTed: never an UPDATE of a row that took the same key meanwhile."""
        if change:
            return super().save_model(request, obj, form, change)
        obj.save(using=self.admin_site.alias, force_insert=True)

    def get_readonly_fields(self, request, obj=None):
        """A saved row's key fields are read-only: a different key is a different row."""
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly += [field.name for field in self.opts.pk.fields if field.name not in readonly]
        return readonly

    def response_add(self, request, obj, post_url_continue=None):
        """Django's redirects and message, with the row's URL from ``url_key`` (Django's uses ``quote(obj.pk)``).

        No popup: a composite-key model cannot be the target of a relation, so no form opens one.
        """
        url = change_url(self, obj)
        name = self.opts.verbose_name
        link = (
            format_html('<a href="{}">{}</a>', urlquote(url), obj) if self.has_change_permission(request, obj) else obj
        )
        preserved = {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}
        if "_continue" in request.POST:
            text = _("The {name} “{obj}” was added successfully.") + " " + _("You may edit it again below.")
            self.message_user(request, format_html(text, name=name, obj=link), messages.SUCCESS)
            return HttpResponseRedirect(add_preserved_filters(preserved, post_url_continue or url))
        if "_addanother" in request.POST:
            text = _("The {name} “{obj}” was added successfully. You may add another {name} below.")
            self.message_user(request, format_html(text, name=name, obj=link), messages.SUCCESS)
            return HttpResponseRedirect(add_preserved_filters(preserved, request.path))
        text = _("The {name} “{obj}” was added successfully.")
        self.message_user(request, format_html(text, name=name, obj=link), messages.SUCCESS)
        return self.response_post_save_add(request, obj)

    def response_action(self, request, queryset):
        """Django's, with the ticked rows found by their parsed keys (Django's ``pk__in`` takes ``str(pk)``).

        The rows are handed over as the action's queryset, marked "select across" so Django
        does not filter them again; a box whose value is no key selects nothing.
        """
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if selected and request.POST.get("select_across") not in ("1", "True"):
            connection = connections[self.admin_site.alias]
            keys = []
            for text in selected:
                try:
                    keys.append(parse_key(self.model, text, connection))
                except ValueError:
                    continue
            queryset = queryset.filter(pk__in=keys) if keys else queryset.none()
            post = request.POST.copy()
            post["select_across"] = "1"
            request.POST = post
        return super().response_action(request, queryset)

    def get_deleted_objects(self, objs, request):
        """Django's summary, each row linked by ``url_key``.

        Nothing can cascade from a composite-key row (no relation may point at one), so the
        rows themselves are the whole list.
        """
        _deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        label = capfirst(self.opts.verbose_name)
        if self.has_view_or_change_permission(request):
            rows = [format_html('{}: <a href="{}">{}</a>', label, change_url(self, obj), obj) for obj in objs]
        else:
            rows = [format_html("{}: {}", label, obj) for obj in objs]
        return rows, model_count, perms_needed, protected

    def history_view(self, request, object_id, extra_context=None):
        """Django's, for the key written as ``key_text`` writes it (the entries' ``object_id``)."""
        from django.contrib.admin.utils import unquote

        try:
            key = parse_key(self.model, unquote(object_id), connections[self.admin_site.alias])
        except ValueError:
            raise Http404("That is not a key of this table.") from None
        canonical = self.model(**{field.attname: value for field, value in zip(self.opts.pk.fields, key, strict=True)})
        return super().history_view(request, url_key(canonical), extra_context)

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        fix_log_entries([entry], [obj])
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        fix_log_entries([entry], [obj])
        return entry

    def log_deletions(self, request, queryset):
        objects = list(queryset)
        entries = super().log_deletions(request, objects)
        fix_log_entries(entries, objects)
        return entries


#: What the list of a key-less table says about its rows.
KEYLESS_NOTICE = (
    "This table has no primary key, so a row cannot be told apart from an identical one: "
    "rows can be listed, filtered and exported, not edited."
)


class KeylessAdminMixin(CompositeKeyAdminMixin):
    """A table without a key: a list ordered by every column, filters and export; no page for one row.

    The model's ``CompositePrimaryKey`` over its columns gives the list a total order (identical
    rows are equal in every column, so no page can skip or repeat one); it names no single row,
    so no form, history, delete, import or action is offered, and their URLs answer 404.
    """

    list_display_links = None
    actions = None
    change_list_template = "admin_site/composite/keyless_change_list.html"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_import_permission(self, request):
        return False

    def get_actions(self, request):
        return {}

    def get_urls(self):
        """Only the list and the export: no URL for one row, an addition or an import exists."""
        kept = {f"{self.opts.app_label}_{self.opts.model_name}_{view}" for view in ("changelist", "export")}
        return [url for url in super().get_urls() if getattr(url, "name", None) in kept]

    def changelist_view(self, request, extra_context=None):
        """The list, read-only: a POST (an action, an edited row) is refused."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return super().changelist_view(request, {**(extra_context or {}), "keyless_notice": KEYLESS_NOTICE})
