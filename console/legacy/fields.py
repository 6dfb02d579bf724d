"""Model fields for MySQL column types and values Django has no field for: zero dates, SET, unsigned BIGINT, latin1.

The older system's tables hold values that Django's stock fields either cannot
read (PyMySQL returns ``0000-00-00`` as a string, and Django's MySQL backend
then fails making it timezone-aware) or would let through to a strict database
that refuses them (a SET member that does not exist, 2^64, "€" in latin1): a
500 instead of a field error.  Each field here reads what the column holds and
validates what it will be given; the panel writes only the fields a save
changed (``DatabaseModelAdmin.save_model``), so values no field can represent
are kept as they are.
"""

import datetime

from django import forms
from django.conf import settings
from django.core import exceptions
from django.db import connections, models, router
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

#: MySQL's "no date": what a ``DATE`` / ``DATETIME NOT NULL DEFAULT '0000-00-00'`` column holds when unset.
ZERO_DATE = "0000-00-00"
ZERO_DATETIME = "0000-00-00 00:00:00"


def is_zero(value):
    """Whether a value read from the database is a date MySQL allows and Python cannot hold.

    That is ``0000-00-00`` or a date with a zero month or day (``2020-00-00``): PyMySQL
    hands such dates back as strings, a real date arrives as a ``date``.
    """
    return isinstance(value, str) and (value[:4] == "0000" or value[5:7] == "00" or value[8:10] == "00")


class ZeroWhenNone:
    """Writes ``None`` as the column's zero date (``zero``) on MySQL, whose column is ``NOT NULL``; NULL elsewhere."""

    zero = None

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if value is None and connection.vendor == "mysql":
            return self.zero
        return value


class ZeroDateField(ZeroWhenNone, models.DateField):
    """A ``DATE`` column that holds MySQL zero dates: read as ``None`` (shown empty), ``None`` written as the zero date.

    Declare it ``null=True, blank=True``: on MySQL the column is ``NOT NULL DEFAULT
    '0000-00-00'`` and "no date" is the zero date; on SQLite, which has no zero
    dates, it is ``NULL``.
    """

    zero = ZERO_DATE

    def from_db_value(self, value, expression, connection):
        if is_zero(value):
            return None
        if isinstance(value, str):
            return parse_date(value)
        return value


class ZeroDateTimeField(ZeroWhenNone, models.DateTimeField):
    """A ``DATETIME`` column that holds MySQL zero dates; see ``ZeroDateField``.

    Its internal type is its own: Django's MySQL backend converts every
    ``DateTimeField`` value to an aware datetime *before* the field sees it, and
    fails on the string PyMySQL returns for a zero date.  ``from_db_value`` does
    that conversion itself, for real datetimes only.
    """

    zero = ZERO_DATETIME

    def get_internal_type(self):
        return "ZeroDateTimeField"

    def db_type(self, connection):
        return connection.data_types["DateTimeField"] % self.db_type_parameters(connection)

    def from_db_value(self, value, expression, connection):
        if is_zero(value):
            return None
        if isinstance(value, str):
            value = parse_datetime(value)
        if isinstance(value, datetime.datetime) and settings.USE_TZ and timezone.is_naive(value):
            value = timezone.make_aware(value, connection.timezone)
        return value


class SetFormField(forms.TypedMultipleChoiceField):
    """Checkboxes for a SET column: the stored ``"a,b"`` ticks ``a`` and ``b``; the cleaned value is ``"a,b"`` again."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, *, members, **kwargs):
        self.members = tuple(members)
        kwargs.pop("coerce", None)
        kwargs.pop("empty_value", None)
        kwargs.pop("max_length", None)
        super().__init__(choices=[(m, m) for m in self.members], **kwargs)

    def prepare_value(self, value):
        return split_members(value)

    def to_python(self, value):
        return super().to_python(split_members(value))

    def clean(self, value):
        chosen = set(super().clean(value))
        # MySQL stores members in their declared order: the form gives the same string back.
        return ",".join(member for member in self.members if member in chosen)

    def has_changed(self, initial, data):
        return set(split_members(initial)) != set(split_members(data))


def split_members(value):
    """``"a,b"`` -> ``["a", "b"]``; a list stays a list; empty -> ``[]``."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return value.split(",")
    return list(value)


class SetField(models.CharField):
    """A MySQL ``SET(...)`` column: comma-separated members, each one of ``members``, shown as checkboxes.

    ``max_length`` defaults to what MySQL reports for the column: every member, comma-joined.
    """

    description = "A set of members, stored comma-separated"

    def __init__(self, *args, members=(), **kwargs):
        self.members = tuple(members)
        kwargs.setdefault("max_length", len(",".join(self.members)) or 1)
        kwargs.setdefault("default", "")
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["members"] = list(self.members)
        return name, path, args, kwargs

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        unknown = [member for member in split_members(value) if member not in self.members]
        if unknown:
            raise exceptions.ValidationError(
                "%(unknown)s is not one of %(members)s.",
                code="invalid_choice",
                params={"unknown": ", ".join(repr(m) for m in unknown), "members": ", ".join(self.members)},
            )

    def formfield(self, **kwargs):
        """Checkboxes, one per member (not CharField's text input)."""
        options = {
            "members": self.members,
            "required": not self.blank,
            "label": self.verbose_name.capitalize(),
            "help_text": self.help_text,
            "initial": self.get_default(),
        }
        options.update(
            (key, value)
            for key, value in kwargs.items()
            if key in ("required", "label", "help_text", "initial", "disabled")
        )
        return SetFormField(**options)


class UnsignedBigIntegerField(models.PositiveBigIntegerField):
    """A ``BIGINT UNSIGNED`` column: 0 … 18446744073709551615 on MySQL, 0 … 2^63-1 on SQLite.

    Django takes an integer field's range from the *default* database (empty
    here, so the generic signed range): this field checks a value against the
    range of the database its row is on, as a field error, where the database
    would refuse it (MySQL strict mode) or the driver could not bind it (SQLite).
    """

    @property
    def validators(self):
        # Field's validators (the field's own ones), without IntegerField's range for the default database.
        return models.Field.validators.func(self)

    def formfield(self, **kwargs):
        """No upper bound in the form (BigIntegerField's is the signed one): ``validate`` knows the database's."""
        field = super().formfield(**{"max_value": None, **kwargs})
        field.widget.attrs.setdefault("style", "width: 22ch")  # 18446744073709551615 fits (the admin's is ~10ch)
        return field

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        if value is None:
            return
        alias = None
        if model_instance is not None:
            alias = model_instance._state.db or router.db_for_write(type(model_instance), instance=model_instance)
        low, high = self.range_on(alias)
        if not low <= value <= high:
            raise exceptions.ValidationError(
                "Ensure this value is between %(low)s and %(high)s.",
                code="out_of_range",
                params={"low": low, "high": high},
            )

    def range_on(self, alias):
        """The values the column holds on ``alias`` (the narrowest of all panels when it is not known)."""
        if alias in connections:
            return connections[alias].ops.integer_field_range(self.get_internal_type())
        return (0, 2**63 - 1)


def is_latin1(text):
    """Whether a ``latin1`` column can hold ``text``: MySQL's latin1 is Windows-1252."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def validate_latin1(value):
    """Text a ``latin1`` column can hold; anything else MySQL refuses in strict mode (a 500, not a field error)."""
    try:
        str(value).encode("cp1252")
    except UnicodeEncodeError as error:
        bad = str(value)[error.start : error.end]
        raise exceptions.ValidationError(
            "“%(bad)s” cannot be stored in this column (Latin-1 text: Western European letters only).",
            code="latin1",
            params={"bad": bad},
        ) from None
