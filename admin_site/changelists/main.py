"""The changelist of a big table: counted by ``ChangeListPaginator``, rows read without ``DISTINCT``.

Its date hierarchy reads only the first and last date (index look-ups)
instead of ``SELECT DISTINCT`` over every row (``admin_site.changelists.dates``).
"""

from django.contrib.admin.filters import FieldListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import InvalidPage
from django.db import connections, models
from django.utils.functional import cached_property
from django.utils.http import urlencode

from admin_site.changelists.counts import count_rows
from admin_site.changelists.dates import date_hierarchy_context
from admin_site.changelists.paginator import (
    CURSOR_VAR,
    DEFERRED_JOIN_FROM,
    NEARBY_PAGES,
    ChangeListPaginator,
    keyset_fields,
    make_cursor,
    read_cursor,
)
from admin_site.changelists.values import check_lookups


def distinct_keys(queryset):
    """The distinct primary keys of ``queryset`` (a list with duplicate rows): as many as it has rows.

    Counting them, ``SELECT COUNT(*) FROM (SELECT DISTINCT pk ... LIMIT n)``, reads
    the join from the filter's side (an index on the related column and its key),
    where the ``EXISTS`` that reads a page fast checks the list's rows one by one.
    """
    return queryset.order_by().values("pk").distinct()


class DatabaseChangeList(ChangeList):
    """A changelist counted by ``ChangeListPaginator`` and with a date hierarchy that reads two dates."""

    #: ``admin/change_list.html`` shows ``date_hierarchy_context()`` instead of Django's hierarchy.
    bounded_dates = True
    #: ... and renders the rows with ``admin_site.changelists.results.fast_results`` (Django's HTML, per column).
    fast_results = True

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
        Duplicate rows are ``get_queryset``'s to remove: Django is told there are none.
        """
        try:
            specs, has_filters, lookups, may_have_duplicates, has_active_filters = super().get_filters(request)
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error
        if any(name.endswith("__range") for name in lookups):
            # Django passes the string on whole: its characters become the range's bounds, one each.
            raise IncorrectLookupParameters("a range cannot be given in a query string")
        self.has_lookups = bool(lookups)  # lookups of the query string itself, not of a list filter
        self.filters_may_have_duplicates = may_have_duplicates
        return specs, has_filters, lookups, False, has_active_filters

    def get_queryset(self, request, exclude_parameters=None):
        """The list's rows, each once: duplicates from a join removed by ``EXISTS``, not ``SELECT DISTINCT``.

        A filter or search across a multi-valued relation (``addresses__city``,
        ``tags``) makes Django add ``DISTINCT`` over every selected column: the
        database must build every joined row before it can sort and take one
        page.  "Rows of the list for which such a row exists" lets it walk the
        list's own order and stop after a page (MariaDB: a FirstMatch semi-join).
        So Django builds the list without its search, and the search follows
        here, where its duplicates flag can be read; the cursor of a
        next/previous link is not a filter: it is set aside.
        """
        if not hasattr(self, "cursor"):
            self.cursor = self.params.pop(CURSOR_VAR, None)
            self.filter_params.pop(CURSOR_VAR, None)
        search_term, self.query = self.query, ""
        try:
            queryset = super().get_queryset(request, exclude_parameters)
        finally:
            self.query = search_term
        queryset, search_may_have_duplicates = self.model_admin.get_search_results(request, queryset, search_term)
        if self.has_lookups:
            check_lookups(queryset)
        duplicates = self.filters_may_have_duplicates or search_may_have_duplicates
        ordering = self.get_ordering(request, self.root_queryset)  # what Django ordered ``queryset`` by
        rows = self.without_duplicates(queryset, ordering) if duplicates else queryset
        if exclude_parameters is None:
            self.list_ordering = ordering
            self.duplicates_removed = duplicates
            # The EXISTS that reads a page fast counts slowly: the database checks the list's rows one by
            # one. Its distinct keys are read from the join, through the filter's own index.
            self.counted_queryset = distinct_keys(queryset) if duplicates else rows
        return rows

    def without_duplicates(self, queryset, ordering):
        """The rows that ``queryset`` (joined, with duplicates) finds, each once, ordered by ``ordering``."""
        rows = self.root_queryset.filter(models.Exists(queryset.order_by().filter(pk=models.OuterRef("pk"))))
        return self.apply_select_related(rows).order_by(*ordering)

    def is_unfiltered(self):
        """True when the list shows every row of ``root_queryset``: no search and no filter parameter.

        A ``SimpleListFilter`` may filter with no value chosen: a list showing one is never taken as unfiltered.
        """
        return not (
            self.query
            or self.get_filters_params()
            or any(not isinstance(spec, FieldListFilter) for spec in self.filter_specs)
        )

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
        # Unfiltered, the "N total" is the list's own count: count once (Django counts twice).
        unfiltered = self.is_unfiltered()
        if self.show_full_result_count and not unfiltered:
            self.full_row_count = count_rows(self.root_queryset, paginator.exact_count_max, paginator.count_time_limit)
        self.can_show_all = count.exact and count.value <= self.list_max_show_all
        if self.show_all and self.can_show_all:
            self.page = None
            self.result_list = self.queryset.all()
        else:
            self.keys = keyset_fields(self.model, self.list_ordering)
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
        """Django's date hierarchy context, with the years, months or days spanned by the first and last date."""
        return date_hierarchy_context(self)
