"""Rendering an export's cells as import-export would: CSV/TSV text with the formula guard, XLSX typed cells."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connections, models
from django.utils import timezone
from django.utils.formats import number_format, sanitize_strftime_format
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

#: Cells starting with these are formulas to a spreadsheet (OWASP CSV injection).
FORMULA_START = frozenset("=+-@\t\r")

#: Model fields whose values are text typed in by people: the ones a formula can hide in.
TEXT_FIELDS = (models.CharField, models.TextField, models.FilePathField, models.FileField)

#: ``text_typed`` of a column whose type is unknown (an annotation): guard the values that are text.
TEXT_VALUES = "text values"

#: The integers a spreadsheet number (a double) holds exactly.
EXACT_INT = 2**53

# Render modes: import-export's strings (JSON), the same with the formula guard
# on text columns (CSV/TSV), typed cells with every string a string cell (XLSX).
TEXT, CSV, NATIVE = "text", "csv", "native"


def escape_formula(value):
    """Prefix ``'`` to text a spreadsheet would run as a formula; anything else unchanged."""
    if type(value) is str and value[:1] in FORMULA_START:
        return "'" + value
    return value


# Cell renderers --------------------------------------------------------------------


class _Env:
    """What rendering depends on, read once per export when its rows start."""

    def __init__(self, alias, sheet=None):
        #: The XLSX sheet being written: a text cell openpyxl would not type as text is made on it.
        self.sheet = sheet
        self.tz = timezone.get_current_timezone() if settings.USE_TZ else None
        self.db_tz = connections[alias].timezone
        # import-export renders numbers with number_format (locale, thousand separators).
        self.plain_numbers = number_format(-1234567) == "-1234567" and number_format(Decimal("-1234.50")) == "-1234.50"

    def cell_text(self, value):
        """An XLSX text cell holding exactly ``value`` (``_cell_text``), on this export's sheet."""
        return _cell_text(value, self.sheet)


def _guard(mode, text_typed, env):
    """The formula guard a column needs in ``mode`` (XLSX: a cell typed as text), or None."""
    if mode == NATIVE:
        return env.cell_text
    if mode == CSV and text_typed:
        return escape_formula
    return None


def _value_renderer(column, mode, env):
    """value -> cell, matching the widget's render() (TEXT/CSV) or render(force_native_type=True)."""
    widget, kind = column.field.widget, column.render
    value_field = column.value_field
    if kind == "number":
        if isinstance(value_field, models.IntegerField) and env.plain_numbers:
            kind = "int"
        elif isinstance(value_field, models.DecimalField) and env.plain_numbers:
            kind = "decimal"
        else:
            kind = "generic"
    if mode == NATIVE:
        if kind == "int" and isinstance(value_field, models.BigIntegerField):
            return _native_big_int
        if kind in ("int", "decimal", "bool", "date", "fk_id"):
            return None
        if kind == "datetime":
            return _native_datetime(env.tz)
        if kind == "str":
            return env.cell_text
        if kind == "raw":
            return lambda value: _cell(value, env)
        return lambda value: _cell(widget.render(value, force_native_type=True), env)
    escape = mode == CSV and column.text_typed
    if kind == "str":
        return _text_escaped if escape else _text
    if kind == "raw":
        return _raw_escaped if escape else _raw
    if kind == "int":
        return None if mode == CSV else _int_text  # the csv module writes ints and None as import-export does
    if kind == "decimal":
        return _decimal_text
    if kind == "bool":
        return _bool_text
    if kind == "date":
        return _date_text(widget.formats[0], isinstance(value_field, models.DateTimeField))
    if kind == "datetime":
        return _datetime_text(widget.formats[0], env.tz)
    if kind == "fk_id":
        return _fk_id_text
    if escape and column.text_typed == TEXT_VALUES:
        return lambda value: escape_formula(widget.render(value)) if type(value) is str else widget.render(value)
    if escape:
        return lambda value: escape_formula(widget.render(value))
    return widget.render


def _renders_raw(column, mode):
    """Whether ``_raw_mysql_renderer`` covers the column: stock datetime rendering, or a UUID as text."""
    if column.render == "datetime":
        # A field that reads its values itself (a MySQL zero date, console/legacy/fields.py) must see them.
        field = column.value_field
        return isinstance(field, models.DateTimeField) and not hasattr(field, "from_db_value")
    return column.render == "str" and isinstance(column.value_field, models.UUIDField)


def _raw_mysql_renderer(column, mode, env):
    """Render PyMySQL's own values: naive datetimes in the connection's zone, UUIDs as stored text."""
    if column.render == "str":
        return _uuid_cell if mode == NATIVE else _uuid_text
    if env.tz is None:  # USE_TZ = False: Django has no converter here anyway
        return _value_renderer(column, mode, env)
    db_tz, tz = env.db_tz, env.tz
    same = str(db_tz) == str(tz)
    if mode == NATIVE:
        if same:
            return None
        return lambda value: None if value is None else value.replace(tzinfo=db_tz).astimezone(tz).replace(tzinfo=None)
    fmt = column.field.widget.formats[0]
    if fmt == "%Y-%m-%d %H:%M:%S" and same:
        return lambda value: value.isoformat(" ", "seconds") if value else ""
    aware = _datetime_text(fmt, tz)
    return lambda value: aware(value.replace(tzinfo=db_tz)) if value else ""


def _uuid_text(value):
    """str(uuid.UUID(value)) for MySQL's stored forms: 32 hex digits (char(32)) or MariaDB's native uuid."""
    if value is None:
        return ""
    if len(value) == 32:
        value = f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return value.lower()


def _uuid_cell(value):
    return None if value is None else _uuid_text(value)


def _text(value):
    if value is None:
        return ""
    return value if type(value) is str else str(value)


def _text_escaped(value):
    if value is None:
        return ""
    if type(value) is not str:
        value = str(value)
    return "'" + value if value[:1] in FORMULA_START else value


def _raw(value):
    """ForeignKeyWidget renders the related attribute as it is."""
    return "" if value is None else value


def _raw_escaped(value):
    return "" if value is None else escape_formula(value)


def _int_text(value):
    return "" if value is None else str(value)


def _native_big_int(value):
    """A spreadsheet number is a double: an integer past 2^53 is written as text, or it would come back rounded."""
    if value is None or -EXACT_INT <= value <= EXACT_INT:
        return value
    return str(value)


def _decimal_text(value):
    return "" if value is None else format(value, "f")


def _bool_text(value):
    if type(value) is not bool:
        return ""
    return "1" if value else "0"


def _fk_id_text(value):
    return value or ""


def _date_text(fmt, from_datetime):
    if fmt == "%Y-%m-%d" and not from_datetime:
        return lambda value: value.isoformat() if value else ""
    fmt = sanitize_strftime_format(fmt)
    return lambda value: value.strftime(fmt) if value else ""


def _datetime_text(fmt, tz):
    """DateTimeWidget.render: local time, formatted; the default format without strftime, which costs more."""
    if fmt != "%Y-%m-%d %H:%M:%S":
        fmt = sanitize_strftime_format(fmt)
        if tz is None:
            return lambda value: value.strftime(fmt) if value else ""
        return lambda value: timezone.localtime(value, tz).strftime(fmt) if value else ""
    if tz is None:
        return lambda value: value.isoformat(" ", "seconds")[:19] if value else ""

    def render(value):
        if not value:
            return ""
        if value.tzinfo is None:
            timezone.localtime(value, tz)  # raises ValueError, as the widget does
        return value.astimezone(tz).replace(tzinfo=None).isoformat(" ", "seconds")

    return render


def _native_datetime(tz):
    """Excel has no time zones: local wall time, naive (what import-export writes)."""

    def render(value):
        if value is None or value.tzinfo is None:
            return value
        if tz is not None:
            value = value.astimezone(tz)
        return value.replace(tzinfo=None)

    return render


def _cell_text(value, sheet):
    """An XLSX text cell, exactly the text: control characters a workbook cannot hold become U+FFFD.

    A cell typed as a string (``t="inlineStr"``) is never run as a formula, so
    "+81 3 5550 0108" needs no apostrophe.  openpyxl types a str itself, except
    one starting with "=" (a formula) or an error code ("#N/A"): those get a
    cell typed as a string (``text_cell``).  (openpyxl refuses the control
    characters and the write-only sheet is lost; import-export replaces them
    the same way under IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT.)
    """
    if value is None:
        return None
    if type(value) is not str:
        value = str(value)
    if ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", value)
    if value[:1] in "=#" and (value[:1] == "=" or value in ERROR_CODES):
        return text_cell(value, sheet)
    return value


def text_cell(value, sheet):
    """A write-only cell holding ``value`` typed as a string, which a spreadsheet shows and never runs."""
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


_NATIVE_TYPES = (int, float, Decimal, datetime.date, datetime.time, datetime.timedelta)


def _cell(value, env):
    """A value openpyxl can write: typed values as they are, strings guarded, anything else as text."""
    if value is None or type(value) is bool:
        return value
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return _native_datetime(env.tz)(value)
    if isinstance(value, _NATIVE_TYPES):
        return value
    return env.cell_text(value)
