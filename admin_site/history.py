"""History that says what changed: each field before → after, on Django's own ``LogEntry``.

Django's admin log stays the one history; the panel's tag on each entry
(``PanelLogEntry``, on the console's own database like ``LogEntry``) carries the
diff as display strings.  Diffs come from the admin's public hooks: the form and
its formsets (``construct_change_message``, which the change form, inlines,
``list_editable`` and the password form all call), a snapshot of the selected
rows around a writing action, the deleted rows' values, and an import's row
results.  A secret (a password hash) is recorded as "changed", never with
values; what a viewer sees is cut to the fields their ModelAdmin shows them.
"""

import datetime
import functools
from decimal import Decimal

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import formats, timezone
from django.utils.text import capfirst

from admin_site.composite import fix_log_entries
from admin_site.models import PanelLogEntry
from admin_site.secrets import is_secret

#: Rows of one action or one bulk delete whose values are recorded (the first, by primary key).
ACTION_ROWS = 1000
#: Longest display string kept for a value, and most names kept for a many-to-many value.
VALUE_CHARS, MANY_NAMES = 200, 50
#: Actions that write nothing (or log themselves, as the delete action does).
QUIET_ACTIONS = frozenset({"delete_selected", "export_admin_action"})


# -- what may be recorded ------------------------------------------------------


def secret_item(model, name):
    """A secret changed: the field, no values (every password field of a form is one "Password")."""
    field = "password" if "password" in name.lower() else name
    return {"field": field, "label": capfirst(_label(model, field)), "secret": True}


def recorded_fields(model):
    """Concrete fields whose values a snapshot keeps: not the automatic key, not a secret."""
    return [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField)) and not is_secret(model, field.name)
    ]


def _label(model, name):
    field = _model_field(model, name)
    return str(field.verbose_name) if field is not None else name.replace("_", " ")


# -- display strings -----------------------------------------------------------


def display(value, field=None, labels=None):
    """A value as a person reads it: a choice's label, a related row's name, a localised date; "" for empty.

    ``labels`` is the field's choices as a dict, when the caller displays many values of one field.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, models.Model):
        return _cut(str(value))
    if isinstance(value, (list, tuple, set, frozenset, models.QuerySet)):
        names = sorted(display(item) for item in list(value)[: MANY_NAMES + 1])
        return names[:MANY_NAMES] + (["…"] if len(names) > MANY_NAMES else [])
    if labels is None and getattr(field, "flatchoices", None):
        labels = choice_labels(field)
    if labels:
        try:
            return _cut(str(labels.get(value, value)))
        except TypeError:  # an unhashable value
            pass
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return formats.localize(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return formats.localize(value)
    if isinstance(value, (Decimal, float, int)):
        return str(value)  # as the change form shows it (localize costs a locale look-up per value)
    return _cut(str(value))


def choice_labels(field):
    """A field's choices as value -> label."""
    try:
        return dict(field.flatchoices)
    except TypeError:
        return {}


def _cut(text):
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _model_field(model, name):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:  # a form-only field (password1)
        return None


# -- forms and inlines ---------------------------------------------------------


def form_changes(form, model, add=False):
    """Each changed field of a bound, valid form of ``model``: before (its initial value) → after (cleaned)."""
    items, secrets = [], set()
    for name in form.changed_data:
        if is_secret(model, name):  # the password form names "password", a field it does not have
            item = secret_item(model, name)
            if item["field"] not in secrets:
                secrets.add(item["field"])
                items.append(item)
            continue
        if name not in form.fields:
            continue
        form_field = form.fields[name]
        model_field = _model_field(model, name)
        before = None if add else _initial_object(form_field, form.get_initial_for_field(form_field, name))
        after = form.cleaned_data.get(name)
        item = {
            "field": name,
            "label": str(form_field.label or _label(model, name)),
            "before": display(before, model_field),
            "after": display(after, model_field),
        }
        if item["before"] != item["after"]:
            items.append(item)
    return items


def _initial_object(form_field, value):
    """A related row's initial pk as the row itself (its name is what a person reads)."""
    queryset = getattr(form_field, "queryset", None)
    if queryset is None or value in (None, "") or isinstance(value, (models.Model, list, tuple, models.QuerySet)):
        return value
    try:
        return form_field.to_python(value)
    except Exception:  # the row is gone: say which
        return f"#{value}"


def formset_changes(formsets):
    """Inline rows added, changed and deleted, each with its fields (after ``save_formset``)."""
    items = []
    for formset in formsets or ():
        model = formset.model
        verbose = str(model._meta.verbose_name)
        forms_by_instance = {id(form.instance): form for form in formset.forms}
        for obj in getattr(formset, "new_objects", ()):
            form = forms_by_instance.get(id(obj))
            changes = form_changes(form, model, add=True) if form is not None else []
            items.append({"inline": verbose, "object": _cut(str(obj)), "action": "added", "changes": changes})
        for obj, _fields in getattr(formset, "changed_objects", ()):
            form = forms_by_instance.get(id(obj))
            changes = form_changes(form, model) if form is not None else []
            items.append({"inline": verbose, "object": _cut(str(obj)), "action": "changed", "changes": changes})
        for obj in getattr(formset, "deleted_objects", ()):
            items.append(
                {"inline": verbose, "object": _cut(str(obj)), "action": "deleted", "changes": object_values(obj)}
            )
    return items


# -- snapshots of rows (actions, deletes, imports) -----------------------------


def raw_values(obj, fields):
    """A row's stored values by field name (a foreign key's id, not the row)."""
    return {field.name: field.value_from_object(obj) for field in fields}


def raw_rows(queryset, fields, limit):
    """pk -> raw values of the first ``limit`` rows of ``queryset`` by primary key, in one query."""
    names = [field.attname for field in fields]
    rows = queryset.order_by("pk").values_list("pk", *names)[:limit]
    return {row[0]: {field.name: value for field, value in zip(fields, row[1:], strict=True)} for row in rows}


def render_diffs(model, pairs, alias):
    """Display items for each (before, after) pair of raw values; related rows are named in one query per field."""
    fields = {field.name: field for field in recorded_fields(model)}
    related = {}
    for name, field in fields.items():
        if field.many_to_one or field.one_to_one:
            ids = {
                values[name]
                for pair in pairs
                for values in pair
                if values is not None
                and values.get(name) is not None
                and (pair[0] is None or pair[1] is None or pair[0].get(name) != pair[1].get(name))
            }
            if ids:
                target = field.target_field.attname
                rows = field.related_model._base_manager.using(alias).filter(**{f"{target}__in": ids})
                related[name] = {getattr(row, target): row for row in rows}
    labels = {name: choice_labels(field) for name, field in fields.items() if field.flatchoices}
    rendered = []
    for before, after in pairs:
        items = []
        for name, field in fields.items():
            old = None if before is None else before.get(name)
            new = None if after is None else after.get(name)
            if before is not None and after is not None and old == new:
                continue
            if before is None and new in (None, ""):
                continue
            if name in related:
                old = related[name].get(old, f"#{old}") if old is not None else None
                new = related[name].get(new, f"#{new}") if new is not None else None
            item = {
                "field": name,
                "label": capfirst(str(field.verbose_name)),
                "before": display(old, field, labels.get(name)),
                "after": display(new, field, labels.get(name)),
            }
            if item["before"] != item["after"]:
                items.append(item)
        rendered.append(items)
    return rendered


def object_values(obj):
    """A row's recorded fields as before → nothing (a deleted inline row)."""
    model = type(obj)
    fields = recorded_fields(model)
    return render_diffs(model, [(raw_values(obj, fields), None)], obj._state.db or "default")[0]


# -- writing entries -----------------------------------------------------------


def tag(alias, entries, changes=None, via="", transfer=None):
    """Tag LogEntry rows just written with the panel's database and, one list per entry, their changes."""
    changes = changes if changes is not None else [[] for _ in entries]
    PanelLogEntry.objects.bulk_create(
        [
            PanelLogEntry(entry=entry, database=alias, via=via, changes=items, transfer=transfer)
            for entry, items in zip(entries, changes, strict=True)
            if entry is not None
        ]
    )


def log_rows(alias, user_id, objects, flag, message, changes, via, transfer=None):
    """One LogEntry per object, bulk-written, each tagged with its changes."""
    if not objects:
        return []
    entries = LogEntry.objects.log_actions(user_id, objects, flag, change_message=message)
    entries = entries if isinstance(entries, list) else [entries]
    fix_log_entries(entries, list(objects))  # a composite key's object_id as its pages name it
    tag(alias, entries, changes, via, transfer)
    return entries


def log_summary(alias, user_id, model, text, message, via, transfer=None):
    """One LogEntry about many rows of ``model`` (no object): an action's or an import's summary."""
    entry = LogEntry.objects.create(
        user_id=user_id,
        content_type=ContentType.objects.get_for_model(model, for_concrete_model=False),
        object_id=None,
        object_repr=text[:200],
        action_flag=CHANGE,
        change_message=message,
    )
    tag(alias, [entry], [[]], via, transfer)
    return entry


def request_via(request):
    """The list's editable columns, or a change form (the password form included)."""
    match = getattr(request, "resolver_match", None)
    name = getattr(match, "url_name", "") or ""
    return PanelLogEntry.Via.LIST if name.endswith("_changelist") else PanelLogEntry.Via.FORM


# -- actions ---------------------------------------------------------------------


def recording_actions(model_admin, request, actions):
    """``get_actions``' dict with each writing action wrapped to record what it changed."""
    wrapped = {}
    for key, (action, name, description) in actions.items():
        if key not in QUIET_ACTIONS:
            action = recording_action(model_admin, action, name, description)
        wrapped[key] = (action, name, description)
    return wrapped


def recording_action(model_admin, func, name, description):
    """``func`` run between two snapshots of the selected rows (the first ``ACTION_ROWS`` by pk)."""

    @functools.wraps(func)
    def action(modeladmin, request, queryset):
        model, alias = modeladmin.model, modeladmin.alias
        fields = recorded_fields(model)
        before = raw_rows(queryset, fields, ACTION_ROWS + 1)
        capped = len(before) > ACTION_ROWS
        before = dict(list(before.items())[:ACTION_ROWS])
        selected = queryset.count() if capped else len(before)
        response = func(modeladmin, request, queryset)
        rows = modeladmin.get_queryset(request).filter(pk__in=list(before))
        after = raw_rows(rows, fields, ACTION_ROWS)
        changed = [pk for pk in before if before[pk] != after.get(pk)]
        objects = {obj.pk: obj for obj in modeladmin.get_queryset(request).filter(pk__in=changed)}
        changed = [pk for pk in changed if pk in objects]
        diffs = render_diffs(model, [(before[pk], after.get(pk)) for pk in changed], alias)
        label = str(description).strip() or name
        log_rows(
            alias,
            request.user.pk,
            [objects[pk] for pk in changed],
            CHANGE,
            f"Changed by the action “{label}”.",
            diffs,
            PanelLogEntry.Via.ACTION,
        )
        plural = model._meta.verbose_name_plural
        note = f" Values were compared for the first {ACTION_ROWS} rows only (cap reached)." if capped else ""
        log_summary(
            alias,
            request.user.pk,
            model,
            f"Action “{label}” on {selected} {plural}",
            f"Ran “{label}” on {selected} selected {plural}; {len(changed)} changed.{note}",
            PanelLogEntry.Via.ACTION,
        )
        return response

    return action


# -- deletes ---------------------------------------------------------------------


def deletion_changes(objects, alias):
    """Each deleted row's values (before → nothing), for the first ``ACTION_ROWS`` rows."""
    objects = list(objects)
    if not objects:
        return []
    model = type(objects[0])
    fields = recorded_fields(model)
    recorded = render_diffs(model, [(raw_values(obj, fields), None) for obj in objects[:ACTION_ROWS]], alias)
    return recorded + [[] for _ in objects[ACTION_ROWS:]]


# -- what a viewer sees ------------------------------------------------------------


def visible_fields(model_admin, request, obj=None):
    """What the viewer's ModelAdmin shows them on the object's form: field names, and each inline's.

    Returns ``(fields, inlines)``: a set of names, and inline verbose name -> set of names for the
    inlines the viewer gets on that form.
    """
    if obj is None:
        obj = model_admin.model()
    fields = set(flatten_fieldsets(model_admin.get_fieldsets(request, obj)))
    inlines = {
        str(inline.opts.verbose_name): set(flatten_fieldsets(inline.get_fieldsets(request, obj)))
        for inline in model_admin.get_inline_instances(request, obj)
    }
    return fields, inlines


def visible_changes(changes, visible):
    """The recorded items the viewer may see (``visible`` from ``visible_fields``)."""
    fields, inlines = visible
    shown = []
    for item in changes or ():
        if "inline" in item:
            if item["inline"] in inlines:
                rows = [row for row in item["changes"] if row.get("field") in inlines[item["inline"]]]
                shown.append({**item, "changes": rows})
        elif item.get("field") in fields:
            shown.append(item)
    return shown


def prepare_for_viewer(entry, visible):
    """Set ``entry.visible_changes`` and ``entry.shown_message`` for a viewer (``visible`` from ``visible_fields``).

    Django's change message names inline rows ("Added address “1 Elm St…”"): when anything
    is cut for this viewer, it is replaced by a sentence that names nothing.
    """
    tagged = getattr(entry, "panel", None)
    recorded = (tagged.changes if tagged else None) or []
    entry.visible_changes = visible_changes(recorded, visible)
    if entry.visible_changes == recorded:
        entry.shown_message = entry.get_change_message()
    else:
        verb = {ADDITION: "Added", CHANGE: "Changed", DELETION: "Deleted"}.get(entry.action_flag, "Changed")
        entry.shown_message = f"{verb}. Changes to fields you may not view are not shown."
    return entry
