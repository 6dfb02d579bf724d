"""The ModelAdmin concern of big tables: its changelist, paginator, search and row checkbox."""

from django.contrib import messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from admin_site.changelists.counts import COUNT_TIME_LIMIT, EXACT_COUNT_MAX
from admin_site.changelists.main import DatabaseChangeList
from admin_site.changelists.paginator import ChangeListPaginator
from admin_site.changelists.results import action_checkbox_html
from admin_site.changelists.search import (
    SUBSTRING_MARK,
    check_search,
    fulltext_plan,
    quote,
    split_terms,
    substring_warning,
)


class BigTableListMixin:
    """A changelist that stays fast on big tables: bounded counts, deep pages, searches through the index."""

    paginator = ChangeListPaginator
    #: Rows counted exactly at most; an unfiltered table above it shows its estimate.
    exact_count_max = EXACT_COUNT_MAX
    #: Seconds a count may take (about what a whole page costs) before the list says "more than N" instead.
    count_time_limit = COUNT_TIME_LIMIT
    #: Search fields whose words a FULLTEXT index (MySQL/MariaDB) holds: when every search field is one, it answers.
    search_fulltext_fields = ()
    #: The columns of that index, when they are not the fields themselves (a column of normalised words).
    search_fulltext_columns = ()

    def get_changelist(self, request, **kwargs):
        return DatabaseChangeList

    def action_checkbox(self, obj):
        """Django's checkbox, without a widget template render per row (a fifth of a 50-row page's time)."""
        return action_checkbox_html(obj, _("Select this object for an action - {}"))

    def get_search_results(self, request, queryset, search_term):
        """Words through the FULLTEXT index where there is one, else Django's search; ``*term``: a substring."""
        check_search(search_term)
        plan = fulltext_plan(self, request, queryset, search_term)
        if plan is None:
            if SUBSTRING_MARK in search_term:  # the "*" only marks a substring: Django's search is one already
                word_terms, substrings = split_terms(search_term)
                search_term = " ".join(quote(term) for term in word_terms + substrings)
            return super().get_search_results(request, queryset, search_term)
        like_terms, conditions = plan
        may_have_duplicates = False
        if like_terms:
            search = " ".join(quote(term) for term in like_terms)
            queryset, may_have_duplicates = super().get_search_results(request, queryset, search)
        for condition in conditions:
            queryset = queryset.filter(condition)
        return queryset, may_have_duplicates

    def changelist_view(self, request, extra_context=None):
        """The list; a search inside words (``*term``) where the index answers searches says it is slow."""
        response = super().changelist_view(request, extra_context)
        search_term = request.GET.get(SEARCH_VAR, "")
        if response.status_code != 200:
            return response
        if request.method == "GET" and search_term and isinstance(response, TemplateResponse):
            warning = substring_warning(self, request, self.get_queryset(request).db, search_term)
            if warning:
                messages.warning(request, warning)  # shown on this page: it renders after the view returns
        return response

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """A ``ChangeListPaginator`` gets this admin's count bounds; ``list_editable`` pages hold a QuerySet."""
        if isinstance(self.paginator, type) and issubclass(self.paginator, ChangeListPaginator):
            options = {
                "exact_count_max": self.exact_count_max,
                "count_time_limit": self.count_time_limit,
                "queryset_pages": bool(self.list_editable),
            }
            return self.paginator(queryset, per_page, orphans, allow_empty_first_page, **options)
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
