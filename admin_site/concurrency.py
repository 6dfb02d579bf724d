"""No lost updates: a form remembers the values it was built from, and its save checks them under a row lock.

Stock Django saves a change form over whatever is in the row now: two people
editing one record, the second save silently puts back the values the first
replaced.  Here every model form of a panel (the change form, each inline row,
each ``list_editable`` row) carries a *state token*: a signed fingerprint, one
short keyed hash per field the form writes, of the values the form was built
from.  When the bound form is cleaned, inside the save's transaction on the
panel's database, the row is read again under ``SELECT … FOR UPDATE`` and each
field compared.  A field someone else changed meanwhile makes the form invalid
with a conflict error that names the field, the value saved now and the
user's; nothing is written, and the lock holds until the save commits.

One mechanism for every table: the console's own, the legacy tables it must not
alter and ``auth_user`` alike, so no version column is needed.  SQLite has no
``FOR UPDATE``; there the panel's transactions begin ``IMMEDIATE``
(``admin_site.conf``), which takes the database's write lock at once.

The form works on the database its instance was read from; the ModelAdmin and
inline mixins at the end put the token in each form and its fieldsets.

Hashes are keyed with the project's secret: the token shows nothing of a value
(a password hash included), and a forged or missing token is a conflict.
"""

import functools
import hashlib

from django import forms
from django.conf import settings
from django.contrib.admin.utils import flatten_fieldsets
from django.core import signing
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.forms.models import InlineForeignKeyField
from django.utils.encoding import force_bytes
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from admin_site.secrets import is_secret

#: The hidden form field that carries the token.
STATE_FIELD = "console_state"
#: Longest value a conflict message quotes.
SHOWN_CHARS = 80


@functools.cache
def fingerprint_key(secret_key):
    """The hash key derived from ``SECRET_KEY``: once per key, not once per hashed value (an import hashes each row)."""
    return hashlib.sha256(force_bytes("admin_site.concurrency" + secret_key)).digest()


def fingerprint(value):
    """A short keyed hash of one value: equal values, equal hashes; nothing of the value readable from it."""
    key = fingerprint_key(settings.SECRET_KEY)
    canonical = f"{type(value).__name__}:{value!r}"
    return hashlib.blake2b(force_bytes(canonical), key=key, digest_size=8).hexdigest()


def tracked_fields(form):
    """The model fields ``form`` writes: its own fields that are concrete or many-to-many fields of the model."""
    opts = form._meta.model._meta
    fields = []
    for name in form.fields:
        if name == STATE_FIELD or isinstance(form.fields[name], InlineForeignKeyField):
            continue  # an inline row's parent key is the formset's, never the row's to change
        if form.fields[name].disabled:
            continue  # shown, never changed here (a password hash): like a read-only field, taken as stored
        try:
            field = opts.get_field(name)
        except Exception:  # a form-only field (a password confirmation): not stored
            continue
        if (field.concrete or field.many_to_many) and not field.primary_key and not field.auto_created:
            fields.append(field)
    return fields


def field_value(instance, field, using):
    """What a field holds for ``instance``: its column value, or the sorted keys of a many-to-many."""
    if field.many_to_many:
        if instance.pk is None:
            return []
        manager = getattr(instance, field.name)
        return sorted(manager.db_manager(using).values_list("pk", flat=True))
    return field.value_from_object(instance)


def row_values(model, pk, fields, using, lock):
    """The stored values of ``fields`` for the row ``pk``, read under ``FOR UPDATE`` when ``lock``; None if gone."""
    queryset = model._base_manager.db_manager(using).filter(pk=pk)
    if lock:
        queryset = queryset.select_for_update()
    columns = [f.attname for f in fields if f.concrete]
    rows = list(queryset.values_list(*columns) if columns else queryset.values_list("pk"))
    if not rows:
        return None
    values = dict(zip(columns, rows[0], strict=True)) if columns else {}
    result = {}
    for field in fields:
        if field.many_to_many:
            through = field.remote_field.through
            source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
            result[field.name] = sorted(
                through._default_manager.db_manager(using).filter(**{source: pk}).values_list(target, flat=True)
            )
        else:
            result[field.name] = values[field.attname]
    return result


def signer(form):
    """Signs for one database and model: a token of a row with the same key elsewhere is refused."""
    model = form._meta.model._meta
    return signing.Signer(salt=f"admin_site.concurrency:{form.instance._state.db}:{model.label_lower}")


def make_token(form):
    """The signed state of ``form``'s instance: its key and one fingerprint per tracked field."""
    instance = form.instance
    state = {
        "pk": str(instance.pk),
        "fields": {f.name: fingerprint(field_value(instance, f, instance._state.db)) for f in tracked_fields(form)},
    }
    return signer(form).sign_object(state, compress=True)


def read_token(form, token):
    """The state a bound form was opened with, or None when the token is missing, forged or for another row."""
    if not token or len(token) > 20_000:
        return None
    try:
        state = signer(form).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(state, dict) or state.get("pk") != str(form.instance.pk):
        return None
    fields = state.get("fields")
    return fields if isinstance(fields, dict) else None


def shown(model, field, value, using, raw=False):
    """A value as a person reads it in a conflict message: choice labels, related names, never a secret.

    ``raw`` is text as posted that did not clean (a mistyped key): quoted as it is, never looked up.
    """
    if is_secret(model, field.name):
        return "(hidden)"
    if value is None or value == "" or value == []:
        return "(empty)"
    try:
        text = str(value) if raw else _text(field, value, using)
    except (ValueError, TypeError, OverflowError, ValidationError):
        text = str(value)
    return "“" + Truncator(text).chars(SHOWN_CHARS) + "”"


def _text(field, value, using):
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, (list, tuple, models.QuerySet)):
        items = list(value)
        if items and not isinstance(items[0], models.Model):
            items = list(related_rows(field, using).filter(pk__in=items)[:20])
        return ", ".join(str(item) for item in items[:20]) or "(none)"
    if field.is_relation:
        related = related_rows(field, using).filter(**{field.remote_field.field_name: value}).first()
        return str(related) if related is not None else str(value)
    if field.flatchoices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def related_rows(field, using):
    return field.remote_field.model._base_manager.db_manager(using)


def submitted_value(form, field, using):
    """What saving ``form`` would store in ``field`` (as ``field_value`` reads it), from its cleaned data."""
    cleaned = form.cleaned_data[field.name]
    if field.many_to_many:
        return sorted(item.pk for item in cleaned)
    scratch = type(form.instance)()
    field.save_form_data(scratch, cleaned)
    return field.value_from_object(scratch)


def form_value(field, stored, using):
    """A stored value as the form's cleaned data holds it: a related row (or rows) for a relation."""
    if field.many_to_many:
        return related_rows(field, using).filter(pk__in=stored)
    if field.is_relation and stored is not None:
        return related_rows(field, using).filter(**{field.remote_field.field_name: stored}).first()
    return stored


class Conflict:
    """One field someone else changed since the form was opened."""

    def __init__(self, field, saved, yours):
        self.field, self.saved, self.yours = field, saved, yours

    def __str__(self):
        return f"{str(self.field.verbose_name).capitalize()}: saved now {self.saved}, yours {self.yours}."


class StateField(forms.CharField):
    """The hidden token: never counted as a change (an untouched inline row stays unsaved, history stays clean)."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def has_changed(self, initial, data):
        return False


class ConcurrencyFormMixin:
    """Carries the state token and refuses a save whose fields changed in the database since the form was built.

    The row is checked on the database the form's instance was read from: the panel's.
    """

    #: Filled by ``clean``: the fields that make this save a conflict.
    conflicts = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[STATE_FIELD] = StateField()
        if self.instance.pk is not None and not self.instance._state.adding and not self.is_bound:
            self.initial[STATE_FIELD] = make_token(self)

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None and not self.instance._state.adding:
            self.check_state()
        return cleaned

    def check_state(self):
        """Compare the stored row, locked until the save's transaction ends, with the state the form was built from."""
        model, using = type(self.instance), self.instance._state.db
        fields = tracked_fields(self)
        others = [f for f in model._meta.concrete_fields if f not in fields and not f.primary_key and not f.generated]
        opened = read_token(self, self.cleaned_data.get(STATE_FIELD))
        name = model._meta.verbose_name
        # href="" is this page by GET: the form as stored now, with a fresh token.
        reload = format_html(
            'Nothing was saved. <a href="">Reload the {}</a> to see what is stored now, then make your change again.',
            name,
        )
        with transaction.atomic(using=using):
            stored = row_values(model, self.instance.pk, [*fields, *others], using, lock=True)
        if stored is None:
            raise ValidationError(
                f"This {name} was deleted by someone else after you opened it. Nothing was saved.", code="conflict"
            )
        if opened is None:
            raise ValidationError(
                format_html(
                    "This form does not say which values of the {} it was opened with (it is incomplete or was "
                    "altered). {}",
                    name,
                    reload,
                ),
                code="conflict",
            )
        self.conflicts = []
        for field in fields:
            if opened.get(field.name) == fingerprint(stored[field.name]):
                continue  # nobody else changed it
            if field.name in self.cleaned_data:
                yours = shown(model, field, self.cleaned_data[field.name], using)
                if self.left_as_opened(field, opened, using):
                    yours += " (as you opened it)"
            else:
                yours = shown(model, field, self.data.get(self.add_prefix(field.name)), using, raw=True)
            self.conflicts.append(Conflict(field, shown(model, field, stored[field.name], using), yours))
        if self.conflicts:
            messages = [format_html("Someone else changed this {} after you opened it. {}", name, reload)]
            messages += [str(conflict) for conflict in self.conflicts]
            raise ValidationError([ValidationError(m, code="conflict") for m in messages])
        # Fields the form does not write are saved too (``Model.save`` writes every column): take them
        # from the locked row, so a change to them made since this form's row was read is kept.
        for field in others:
            setattr(self.instance, field.attname, stored[field.name])
            if field.name in self.fields and self.fields[field.name].disabled:
                self.cleaned_data[field.name] = form_value(field, stored[field.name], using)

    def left_as_opened(self, field, opened, using):
        """Whether this form would store what it was opened with in ``field`` (the person did not change it)."""
        try:
            return fingerprint(submitted_value(self, field, using)) == opened.get(field.name)
        except (ValueError, TypeError, AttributeError):
            return False


class StaleSaveFormSetMixin:
    """A formset that says when a row it holds was deleted, or a row marked for deletion changed, meanwhile.

    Django ignores the errors of a form marked for deletion, and a row gone
    from the database leaves only an error on the hidden key field: both would
    be silent without this.
    """

    def clean(self):
        super().clean()
        plural = self.model._meta.verbose_name_plural
        reload = mark_safe('Nothing was saved. <a href="">Reload the page</a> to see what is stored now.')
        for form in self.forms:
            if form.has_error(self.model._meta.pk.name, code="invalid_choice"):
                raise ValidationError(
                    format_html(
                        "One of the {} on this page was deleted by someone else after you opened it. {}", plural, reload
                    ),
                    code="conflict",
                )
            deleting = self.can_delete and getattr(form, "cleaned_data", {}).get("DELETE")
            if deleting and form.has_error(NON_FIELD_ERRORS, code="conflict"):
                messages = [
                    format_html(
                        "Not deleted: someone else changed “{}” after you opened this page. {}", form.instance, reload
                    ),
                    *(str(conflict) for conflict in form.conflicts),
                ]
                raise ValidationError([ValidationError(m, code="conflict") for m in messages])


def protect_formset(formset_class):
    """Subclass a formset class with ``StaleSaveFormSetMixin`` (once)."""
    if issubclass(formset_class, StaleSaveFormSetMixin):
        return formset_class
    protected = type(formset_class.__name__, (StaleSaveFormSetMixin, formset_class), {})
    protected.__qualname__ = formset_class.__qualname__
    return protected


def protect_form(form_class):
    """Subclass a ModelForm class with the state token and the conflict check (once)."""
    if issubclass(form_class, ConcurrencyFormMixin):
        return form_class
    protected = type(form_class.__name__, (ConcurrencyFormMixin, form_class), {"__module__": form_class.__module__})
    protected.__qualname__ = form_class.__qualname__
    return protected


def with_state_field(fieldsets):
    """``fieldsets`` with the hidden token in the first one, so the admin's templates render it."""
    fieldsets = list(fieldsets)
    if not fieldsets or STATE_FIELD in flatten_fieldsets(fieldsets):
        return fieldsets
    name, options = fieldsets[0]
    fieldsets[0] = (name, {**options, "fields": [*options.get("fields", ()), STATE_FIELD]})
    return fieldsets


def without_state_field(fields):
    """Form field names for a ModelForm factory: the token is the form's own field, not the model's."""
    return [name for name in fields if name != STATE_FIELD]


class StateFieldsetsMixin:
    """A change form (or inline) renders the hidden state token with its fields."""

    def get_fieldsets(self, request, obj=None):
        """The token joins the first fieldset; a read-only page has no form to save, so no token."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not self.has_change_permission(request, obj):
            return fieldsets
        return with_state_field(fieldsets)


class StaleSaveAdminMixin(StateFieldsetsMixin):
    """A ModelAdmin whose change forms and ``list_editable`` rows refuse a stale save."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        return protect_form(
            super().get_form(request, obj, change=change, **model_form_fields(self, request, obj, kwargs))
        )

    def get_changelist_form(self, request, **kwargs):
        return protect_form(super().get_changelist_form(request, **kwargs))

    def get_changelist_formset(self, request, **kwargs):
        return protect_formset(super().get_changelist_formset(request, **kwargs))


class StaleSaveInlineMixin(StateFieldsetsMixin):
    """An inline whose rows refuse a stale save."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **model_form_fields(self, request, obj, kwargs))
        formset.form = protect_form(formset.form)
        return protect_formset(formset)


def model_form_fields(model_admin, request, obj, kwargs):
    """``kwargs`` for the form factory: the fieldsets' fields (Django's default) without the token."""
    if "fields" not in kwargs:
        kwargs["fields"] = flatten_fieldsets(model_admin.get_fieldsets(request, obj))
    if kwargs["fields"] is not None:
        kwargs["fields"] = without_state_field(kwargs["fields"])
    return kwargs
