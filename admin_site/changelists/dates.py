"""The date hierarchy of a big list, built from the list's first and last date.

Django's ``date_hierarchy`` tag lists the years, months or days with
``SELECT DISTINCT`` over every row of the list.  Here one ``MIN``/``MAX``
query (index look-ups) gives the first and last date, and the hierarchy lists
every year, month or day between them: one without rows inside the span is
listed too, and shows an empty list.  The context is the one Django's tag
gives ``admin/date_hierarchy.html``: ``show``, ``back`` and ``choices``.
"""

import calendar
import datetime

from django.db import models
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from admin_site.changelists.counts import COUNT_TIME_LIMIT, StatementTimeout, statement_time_limit


def date_hierarchy_context(cl):
    """The context of ``admin/date_hierarchy.html`` for changelist ``cl``, as Django's ``date_hierarchy`` tag gives it.

    The query string's date values were checked by ``DatabaseChangeList.get_filters``:
    a value no date has never reaches this point (``?e=1``).
    """
    name = cl.date_hierarchy
    year_field, month_field, day_field = (f"{name}__{part}" for part in ("year", "month", "day"))
    year, month, day = (cl.params.get(field) for field in (year_field, month_field, day_field))

    def link(filters):
        return cl.get_query_string(filters, [f"{name}__"])

    if year and month and day:
        date = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))}],
        }
    first, last = within_selection(*date_span(cl), year, month)
    if not (year or month or day) and first is not None:
        # Django's start level: the year (and month) that all the dates share.
        if first.year == last.year:
            year = first.year
            if first.month == last.month:
                month = first.month
    if year and month:
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: date.day}),
                    "title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT")),
                }
                for date in spanned(first, last, "day")
            ],
        }
    if year:
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({year_field: year, month_field: date.month}),
                    "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
                }
                for date in spanned(first, last, "month")
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(date.year)}), "title": str(date.year)}
            for date in spanned(first, last, "year")
        ],
    }


def date_span(cl):
    """The first and last date of ``cl``'s list, as dates in the current time zone; ``(None, None)`` if none.

    The count and the span share one time budget (the admin's ``count_time_limit``):
    a MIN/MAX over rows as slow to read as a count that used most of it, or ran
    out of it, would run out too.  A search (a FULLTEXT look-up as dear as the
    count, or a scan) and a filter across a relation (no index leads with the
    filter and the date: MIN/MAX reads every row the join finds) take the whole
    list's span instead, as does a MIN/MAX that runs out of time.
    """
    seconds = getattr(cl.model_admin, "count_time_limit", COUNT_TIME_LIMIT)
    left = seconds - getattr(cl, "count_seconds", 0.0)
    cheap = (
        left > seconds / 4
        and not getattr(cl, "count_stopped", False)
        and not cl.query
        and not getattr(cl, "duplicates_removed", False)
    )
    tries = [(cl.queryset, left)] if cheap else []
    name = cl.date_hierarchy
    for queryset, limit in [*tries, (cl.root_queryset, seconds)]:
        try:
            with statement_time_limit(queryset.db, limit):
                span = queryset.order_by().aggregate(first=models.Min(name), last=models.Max(name))
        except StatementTimeout:
            continue
        if span["first"] is None or span["last"] is None:
            return None, None
        return as_date(span["first"]), as_date(span["last"])
    return None, None


def as_date(value):
    """``value`` (a date, or a datetime as stored) as the date it is in the current time zone."""
    if isinstance(value, datetime.datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    return value


def within_selection(first, last, year, month):
    """``first`` and ``last`` kept within the year (and month) the query string selects.

    The whole list's span, taken when the list's own is too dear, may reach past them.
    """
    if first is None or not year:
        return first, last
    try:
        year = int(year)
        if month:
            low = datetime.date(year, int(month), 1)
            high = datetime.date(year, low.month, calendar.monthrange(year, low.month)[1])
        else:
            low, high = datetime.date(year, 1, 1), datetime.date(year, 12, 31)
    except (ValueError, OverflowError):  # not a date: never listed (``get_filters`` refuses it)
        return first, last
    first, last = max(first, low), min(last, high)
    return (first, last) if first <= last else (None, None)


def spanned(first, last, kind):
    """Every year, month or day (``kind``) from ``first`` to ``last``, as dates, Django's ``dates()`` would."""
    if first is None or last is None:
        return []
    if kind == "year":
        return [datetime.date(year, 1, 1) for year in range(first.year, last.year + 1)]
    if kind == "month":
        months = range(first.year * 12 + first.month - 1, last.year * 12 + last.month)
        return [datetime.date(m // 12, m % 12 + 1, 1) for m in months]
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
