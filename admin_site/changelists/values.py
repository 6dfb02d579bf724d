"""Values from the query string checked before the database sees them: a bad one is ``?e=1``, never a 500."""

import datetime
import math

from django.conf import settings
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import EmptyResultSet, ValidationError
from django.utils import timezone

from admin_site.adapters.django import query_parameters


def column_value(field, value, connection):
    """``value`` as ``field``'s Python value; ValueError when no row of the column on ``connection`` holds it.

    A value from a request (a cursor, an object id, a filter's key) reaches the
    driver only if it can be bound and compared: SQLite refuses an integer past
    64 bits with an ``OverflowError``, and Django checks the range only in the
    look-ups of integer columns, not in those of a relation.
    """
    if value is None or isinstance(value, (list, dict)):
        raise ValueError("not a column value")
    try:
        value = field.to_python(value)
        if value is None or not bindable(value):
            raise ValueError("not a column value")
        if isinstance(value, datetime.datetime) and settings.USE_TZ and timezone.is_naive(value):
            raise ValueError("a time without its zone")
        internal_type = (field.target_field if field.is_relation else field).get_internal_type()
        if isinstance(value, int) and internal_type in connection.ops.integer_field_ranges:
            low, high = connection.ops.integer_field_range(internal_type)
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"{value} is out of the column's range")
        field.get_db_prep_value(value, connection)  # as the look-up will: a time near year 9999 overflows into UTC
    except (TypeError, ArithmeticError, ValidationError) as error:
        raise ValueError(f"not a value of {field.name}") from error
    return value


def check_lookups(queryset):
    """Raise ``IncorrectLookupParameters`` (``?e=1``) unless ``queryset``'s SQL builds and its values bind.

    Django checks the lookups of a changelist's query string by building the
    filter; some fail only when the SQL is compiled (a ``__year`` past a C long)
    or bound (``bindable``: an integer past 64 bits in ``__in`` or through a
    relation, an infinite float), a 500 as the page is read.
    """
    try:
        params = query_parameters(queryset)
    except EmptyResultSet:
        return
    except Exception as error:  # as ChangeList.get_queryset: there is no other way to validate lookups
        raise IncorrectLookupParameters(error) from error
    if not all(map(bindable, params)):
        raise IncorrectLookupParameters("a number no database column holds")


def bindable(value):
    """False for a number a supported driver cannot bind: an integer past 64 bits (SQLite), infinity (MySQLdb)."""
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return not isinstance(value, float) or math.isfinite(value)
