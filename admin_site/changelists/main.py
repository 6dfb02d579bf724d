"""The changelist of a big table: counted by ``ChangeListPaginator``, rows read without ``DISTINCT``.

Its date hierarchy reads only the first and last date (index look-ups)
instead of ``SELECT DISTINCT`` over every row.
"""

import datetime

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import InvalidPage
from django.db import connections, models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.http import urlencode

from admin_site.changelists.counts import COUNT_TIME_LIMIT, StatementTimeout, count_rows, statement_time_limit
from admin_site.changelists.paginator import (
    CURSOR_VAR,
    DEFERRED_JOIN_FROM,
    NEARBY_PAGES,
    ChangeListPaginator,
    keyset_fields,
    make_cursor,
    read_cursor,
)
from admin_site.changelists.search import matches
from admin_site.changelists.values import check_lookups


def without_distinct(queryset, root_queryset):
    """``queryset`` with its duplicate rows removed by ``EXISTS`` instead of ``SELECT DISTINCT``.

    A filter or search across a multi-valued relation (``addresses__city``,
    ``tags``) makes Django add ``DISTINCT`` over every selected column: the
    database must build every joined row before it can sort and take one
    page.  "Rows of the list for which such a row exists" lets it walk the
    list's own order and stop after a page (MariaDB: a FirstMatch semi-join).
    """
    if not queryset.query.distinct or queryset.query.distinct_fields:
        return queryset
    inner = queryset.order_by()
    inner.query.distinct = False
    rows = root_queryset.filter(models.Exists(inner.filter(pk=models.OuterRef("pk"))))
    rows = rows.order_by(*queryset.query.order_by)
    rows.query.select_related = queryset.query.select_related
    return rows


def distinct_keys(queryset):
    """The distinct primary keys of ``queryset`` (a list with ``DISTINCT``): as many as it has rows.

    Counting them, ``SELECT COUNT(*) FROM (SELECT DISTINCT pk ... LIMIT n)``, reads
    the join from the filter's side (an index on the related column and its key):
    "customers with an address in Lyon" counts 10,000 of them in about 20 ms, where
    ``without_distinct``'s EXISTS checks the customers one by one (a second, for
    the same count).
    """
    return queryset.order_by().values("pk").distinct()


class DatabaseChangeList(ChangeList):
    """A changelist counted by ``ChangeListPaginator`` and with a date hierarchy that reads two dates."""

    #: ``admin/change_list.html`` shows ``date_hierarchy_context()`` instead of Django's hierarchy.
    bounded_dates = True
    #: ... and renders the rows with ``admin_site.changelists.results.fast_results`` (Django's HTML, per column).
    fast_results = True
    #: ... and its filters with the ``fast_list_filter`` tag (Django's HTML, without a template per filter).
    fast_filters = True

    def get_query_string(self, new_params=None, remove=None):
        """Django's query string, each parameter encoded once per page instead of once per link.

        A page builds one for every filter choice, sort link and page link
        (over a hundred on the customers list), each encoding every parameter anew.
        """
        params = self.filter_params.copy()
        for prefix in remove or ():
            for name in [name for name in params if name.startswith(prefix)]:
                del params[name]
        for name, value in (new_params or {}).items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        return "?" + "&".join(filter(None, map(self._encoded_parameter, sorted(params.items()))))

    def _encoded_parameter(self, item):
        """``urlencode([item], doseq=True)``, remembered for the page ("" for an empty list)."""
        name, value = item
        key = (name, tuple(value) if isinstance(value, list) else value)
        try:
            encoded = self._encoded.get(key)
        except TypeError:  # a list of lists (Django's own ``__in`` filter parameters): not remembered
            return urlencode([item], doseq=True)
        if encoded is None:
            encoded = self._encoded[key] = urlencode([item], doseq=True)
        return encoded

    @cached_property
    def _encoded(self):
        return {}

    def get_filters(self, request):
        """Django's filters; a date hierarchy value no date has is a bad lookup (``?e=1``), not a 500.

        Django catches the ``ValueError`` of ``datetime(year, month, day)`` but not its
        ``OverflowError`` (a year past a C long), nor the ``ValueError`` or ``OverflowError``
        of the next year, month or day after 9999-12-31, where its bounds end.  The
        query string's own lookups are checked once the list is built (``check_lookups``).
        """
        try:
            filters = super().get_filters(request)
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error
        lookups = filters[2]  # lookups of the query string itself, not of a list filter
        if any(name.endswith("__range") for name in lookups):
            # Django passes the string on whole: its characters become the range's bounds, one each.
            raise IncorrectLookupParameters("a range cannot be given in a query string")
        self.has_lookups = bool(lookups)
        return filters

    def get_queryset(self, request, exclude_parameters=None):
        """The list's rows; the cursor of a next/previous link is not a filter: set it aside."""
        if not hasattr(self, "cursor"):
            self.cursor = self.params.pop(CURSOR_VAR, None)
            self.filter_params.pop(CURSOR_VAR, None)
        queryset = super().get_queryset(request, exclude_parameters)
        if self.has_lookups:
            check_lookups(queryset)
        rows = without_distinct(queryset, self.root_queryset)
        if exclude_parameters is None:
            # The EXISTS that reads a page fast counts slowly: the database checks the list's rows one by
            # one. Its distinct keys are read from the join, through the filter's own index.
            self.counted_queryset = distinct_keys(queryset) if rows is not queryset else rows
        return rows

    def get_results(self, request):
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        if not isinstance(paginator, ChangeListPaginator):
            return super().get_results(request)
        self.paginator = paginator
        paginator.counted = self.counted_queryset
        self.show_full_result_count = self.model_admin.show_full_result_count
        self.full_row_count = None
        count = paginator.row_count
        self.count_seconds = count.seconds
        self.count_stopped = count.stopped
        # Unfiltered, the "N total" is the list's own count: count once (Django counts twice, #8408).
        unfiltered = self.queryset.query.where == self.root_queryset.query.where
        if self.show_full_result_count and not unfiltered:
            self.full_row_count = count_rows(self.root_queryset, paginator.exact_count_max, paginator.count_time_limit)
        self.can_show_all = count.exact and count.value <= self.list_max_show_all
        if self.show_all and self.can_show_all:
            self.page = None
            self.result_list = self.queryset._clone()
        else:
            self.keys = keyset_fields(self.queryset)
            cursor = self.read_cursor()
            try:
                if cursor:
                    self.page = paginator.keyset_page(self.page_num, self.keys, cursor)
                else:
                    self.page = paginator.page(self.page_num)
            except InvalidPage:
                raise IncorrectLookupParameters from None
            self.page_num = self.page.number
            self.result_list = self.page.object_list
        count = paginator.row_count  # a page may have sharpened a lower bound
        if count.exact:
            self.multi_page = count.value > self.list_per_page
        else:
            self.multi_page = bool(self.page and (self.page.number > 1 or self.page.has_next()))
        self.row_count = count
        if self.show_full_result_count and unfiltered:
            self.full_row_count = count
        self.result_count = count.value
        self.full_result_count = self.full_row_count.value if self.full_row_count else None
        self.show_admin_actions = not self.show_full_result_count or bool(
            self.full_result_count or (self.full_row_count and not self.full_row_count.exact)
        )

    def read_cursor(self):
        """The cursor of the request (``read_cursor``), or None: then the page is read by its number."""
        if not (self.keys and self.cursor):
            return None
        max_skip = (NEARBY_PAGES - 1) * self.list_per_page
        return read_cursor(self.keys, self.cursor, connections[self.queryset.db], max_skip)

    def page_link(self, number):
        """The query string of the numbered link to page ``number``, or None for Django's own.

        From a page deep in a keyset-ordered list, the pages around it are read
        from its first or last row (a cursor passing over the pages between):
        page 5,001 costs what page 2 costs, where its number alone costs an
        OFFSET of 250,000 rows.
        """
        page = getattr(self, "page", None)
        keys = getattr(self, "keys", None)
        if not (keys and page and page.object_list) or not isinstance(number, int) or number == page.number:
            return None
        distance = number - page.number
        if abs(distance) > NEARBY_PAGES or (number - 1) * self.list_per_page < DEFERRED_JOIN_FROM:
            return None
        rows = list(page.object_list)
        after = distance > 0
        skip = (abs(distance) - 1) * self.list_per_page
        cursor = make_cursor(keys, rows[-1] if after else rows[0], after, skip)
        return self.get_query_string({PAGE_VAR: number, CURSOR_VAR: cursor})

    @cached_property
    def navigation(self):
        """Previous/next links; with a keyset ordering they carry the cursor, so any depth costs one page."""
        page = getattr(self, "page", None)
        if page is None:
            return None
        rows = list(page.object_list)
        keys = getattr(self, "keys", None)

        def link(number, row, after):
            params = {"p": number}
            if keys and row is not None:
                params[CURSOR_VAR] = make_cursor(keys, row, after)
            return self.get_query_string(params)

        return {
            "previous": link(page.number - 1, rows[0] if rows else None, False) if page.number > 1 else None,
            "next": link(page.number + 1, rows[-1] if rows else None, True) if page.has_next() else None,
            "past_the_end": getattr(page, "past_the_end", False),
            "first": self.get_query_string({"p": 1}),
        }

    def date_hierarchy_context(self):
        """Django's date hierarchy, with the years, months or days spanned by the first and last date.

        Django lists them with ``SELECT DISTINCT`` over every row of the list;
        the first and last date are two index look-ups.  A year (month, day)
        without rows inside the span is listed too, and shows an empty list.
        """
        return bounded_date_hierarchy(self)


def bounded_date_hierarchy(cl):
    """The context Django's ``date_hierarchy.html`` expects, built from the list's first and last date."""
    from django.contrib.admin.templatetags.admin_list import date_hierarchy

    return date_hierarchy(_HierarchyStub(cl))


class _HierarchyStub:
    """What Django's ``date_hierarchy`` tag reads from a changelist, with a queryset that lists dates cheaply."""

    def __init__(self, cl):
        self._cl = cl
        self.date_hierarchy = cl.date_hierarchy
        self.model = cl.model
        self.params = cl.params
        seconds = getattr(cl.model_admin, "count_time_limit", COUNT_TIME_LIMIT)
        # The count and the list's own span share one time budget: MIN/MAX over rows as slow to read
        # as a count that used most of it, or ran out of it, would run out too. Over a FULLTEXT search
        # MIN/MAX is one more look-up of the index, as dear as the count, and across a relation filter
        # (duplicates removed, ``distinct_keys``) no index leads with the filter and the date: MIN/MAX
        # reads every row the join finds. Those take the whole list's span instead.
        left = seconds - getattr(cl, "count_seconds", 0.0)
        joined = getattr(cl, "counted_queryset", cl.queryset) is not cl.queryset
        cheap = (
            left > seconds / 4 and not getattr(cl, "count_stopped", False) and not matches(cl.queryset) and not joined
        )
        tries = [(cl.queryset, left)] if cheap else []
        self.queryset = _SpanDates([*tries, (cl.root_queryset, seconds)], cl.date_hierarchy)

    def get_query_string(self, new_params=None, remove=None):
        return self._cl.get_query_string(new_params, remove)


class _SpanDates:
    """Answers ``aggregate(Min, Max)`` and ``dates()``/``datetimes()`` from one MIN/MAX query.

    The dates listed are every year, month or day between the first and the
    last date.  MIN/MAX is an index look-up when an index leads with the
    list's filter and the date; when it is not (it runs out of its time, or
    the count left it too little), the unfiltered list's span stands in.
    """

    def __init__(self, tries, field_name):
        self._tries = tries  # (queryset, seconds) pairs, in order
        self._field_name = field_name

    @cached_property
    def span(self):
        name = self._field_name
        for queryset, seconds in self._tries:
            try:
                with statement_time_limit(queryset.db, seconds):
                    return queryset.order_by().aggregate(first=models.Min(name), last=models.Max(name))
            except StatementTimeout:
                continue
        return {"first": None, "last": None}

    def aggregate(self, **aggregates):
        return dict(self.span)

    def dates(self, field_name, kind):
        first, last = self.span["first"], self.span["last"]
        if first is None or last is None:
            return []
        if isinstance(first, datetime.datetime):
            first, last = (timezone.localtime(v) if timezone.is_aware(v) else v for v in (first, last))
            first, last = first.date(), last.date()
        if kind == "year":
            return [datetime.date(year, 1, 1) for year in range(first.year, last.year + 1)]
        if kind == "month":
            months = range(first.year * 12 + first.month - 1, last.year * 12 + last.month)
            return [datetime.date(m // 12, m % 12 + 1, 1) for m in months]
        return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]

    datetimes = dates
