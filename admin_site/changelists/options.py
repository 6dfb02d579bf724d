"""The ModelAdmin concern of big tables: its changelist, paginator, search and row checkbox."""

from django.utils.translation import gettext as _

from admin_site.changelists.counts import COUNT_TIME_LIMIT, EXACT_COUNT_MAX, SEARCH_TIME_LIMIT
from admin_site.changelists.main import DatabaseChangeList
from admin_site.changelists.paginator import ChangeListPaginator
from admin_site.changelists.results import action_checkbox_html
from admin_site.changelists.search import fulltext_plan, matches, quote, walking


class BigTableListMixin:
    """A changelist that stays fast on big tables: bounded counts, deep pages, searches through the index."""

    paginator = ChangeListPaginator
    #: Rows counted exactly at most; an unfiltered table above it shows its estimate.
    exact_count_max = EXACT_COUNT_MAX
    #: Seconds a count may take (about what a whole page costs) before the list says "more than N" instead.
    count_time_limit = COUNT_TIME_LIMIT
    #: Seconds a FULLTEXT search's count may take; past it the word is common, and its pages are read by
    #: walking the list with Django's LIKE (as long again at most) before the index answers them.
    search_time_limit = SEARCH_TIME_LIMIT
    #: Columns of a FULLTEXT index (MySQL/MariaDB) that can answer ``search_fields`` on them.
    search_fulltext_fields = ()

    def get_changelist(self, request, **kwargs):
        return DatabaseChangeList

    def action_checkbox(self, obj):
        """Django's checkbox, without a widget template render per row (a fifth of a 50-row page's time)."""
        return action_checkbox_html(obj, _("Select this object for an action - {}"))

    def get_search_results(self, request, queryset, search_term):
        """Search words through the FULLTEXT index where there is one, with Django's results."""
        plan = fulltext_plan(self, request, queryset, search_term)
        if plan is None:
            return super().get_search_results(request, queryset, search_term)
        like_terms, conditions = plan
        may_have_duplicates = False
        if like_terms:
            search = " ".join(quote(term) for term in like_terms)
            queryset, may_have_duplicates = super().get_search_results(request, queryset, search)
        for condition in conditions:
            queryset = queryset.filter(condition)
        return queryset, may_have_duplicates

    def response_action(self, request, queryset):
        """An action on ticked rows of a search takes every ticked row Django's search finds.

        A walked page (``admin_site.changelists.search``) shows Django's ``LIKE`` results,
        which may hold a row the FULLTEXT index does not (a term inside a
        word); re-applying the index would leave that ticked row out.  An
        action on every row ("select all") keeps the index: never more rows
        than the list said it had.
        """
        if request.POST.get("select_across", "0") == "0" and matches(queryset):
            queryset = walking(queryset)
        return super().response_action(request, queryset)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """A ``ChangeListPaginator`` gets this admin's count bounds."""
        if isinstance(self.paginator, type) and issubclass(self.paginator, ChangeListPaginator):
            bounds = {
                "exact_count_max": self.exact_count_max,
                "count_time_limit": self.count_time_limit,
                "search_time_limit": self.search_time_limit,
            }
            return self.paginator(queryset, per_page, orphans, allow_empty_first_page, **bounds)
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
