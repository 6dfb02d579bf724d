"""Pages of a changelist counted by ``counts.count_rows``: pages past an inexact count, and keyset cursors.

Each page of an inexactly counted list reads one row more than it shows to
know whether there is a next page, so next/previous navigation works to the
real last row.  Next/previous links carry a cursor (the row a page starts
after), so a deep page costs what page 2 costs.
"""

import base64
import json
import math
import operator
from functools import reduce

from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.functional import cached_property

from admin_site.changelists.counts import AT_LEAST, COUNT_TIME_LIMIT, EXACT, EXACT_COUNT_MAX, RowCount, count_rows
from admin_site.changelists.values import column_value

#: Query parameter of next/previous links: the row a page starts after (or ends before).
CURSOR_VAR = "cursor"


#: From this many rows in, a numbered page reads its pks before its rows (``ChangeListPaginator.rows``)
#: and the numbered links of the pages around it are read from its rows (``DatabaseChangeList.page_link``).
DEFERRED_JOIN_FROM = 1000


#: How far from the current page a numbered link carries a cursor: Django's elided page range shows 3 each side.
NEARBY_PAGES = 3


#: The largest OFFSET (and LIMIT) every supported database takes: SQLite's, a signed 64-bit integer.
MAX_OFFSET = 2**63 - 1


def keyset_fields(model, ordering):
    """``[(field, descending), ...]`` when ``ordering`` of ``model``'s list is plain columns ending with a unique one.

    Then "the rows after this one" is a condition an index answers, whatever
    the page's depth (keyset pagination); otherwise None.  ``ordering`` is what
    the changelist orders by (``ChangeList.get_ordering``).
    """
    opts = model._meta
    keys = []
    for item in ordering:
        if not isinstance(item, str) or "__" in item or item.lstrip("-") == "?":
            return None
        name = item.lstrip("-")
        try:
            field = opts.pk if name == "pk" else opts.get_field(name)
        except FieldDoesNotExist:
            return None
        if field.null or not field.concrete or field.many_to_many:
            return None
        keys.append((field, item.startswith("-")))
        if field.primary_key or field.unique:
            return keys
    return None


def make_cursor(keys, obj, after, skip=0):
    """The ``CURSOR_VAR`` value for the rows after (or before) ``obj``, the first ``skip`` of them passed over."""
    values = [getattr(obj, field.attname) for field, _ in keys]
    payload = ["a" if after else "b", values, *([skip] if skip else [])]
    payload = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def read_cursor(keys, cursor, connection, max_skip):
    """``(after, values, skip)`` from a ``make_cursor`` value, or None when ``cursor`` is not one for ``keys``.

    The cursor comes back in the query string, so anything may be in it.  None
    means "no cursor": the page is read by its number, as Django reads a ``?p=``
    it cannot parse as page 1.  A cursor is only a quicker way to a page the
    number names, so a bad one costs speed, not an error page.  It is not one
    when it does not decode, when a value is one no row of its column holds
    (``column_value``), or when it passes over more than ``max_skip`` rows (the
    most a numbered link near the page skips).
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        direction, values, *rest = json.loads(raw, parse_constant=_not_a_number, parse_float=_finite)
        skip = rest[0] if rest else 0
        if direction not in ("a", "b") or not isinstance(values, list) or len(values) != len(keys) or len(rest) > 1:
            return None
        if type(skip) is not int or not 0 <= skip <= max_skip:
            return None
        values = [column_value(field, value, connection) for (field, _), value in zip(keys, values, strict=True)]
        return direction == "a", values, skip
    except (ValueError, TypeError, RecursionError):
        return None


def _not_a_number(name):
    raise ValueError(f"{name} is not a key")


def _finite(text):
    """A JSON number as a float; ``1e400`` (infinity to Python) is refused like ``Infinity``."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is not a key")
    return number


def keyset_condition(keys, values, after):
    """Rows after (or before) the row with ``values`` in the ordering ``keys``: an index range."""
    conditions, equal = [], {}
    for (field, descending), value in zip(keys, values, strict=True):
        lookup = "lt" if descending == after else "gt"
        conditions.append(models.Q(**equal, **{f"{field.attname}__{lookup}": value}))
        equal[field.attname] = value
    return reduce(operator.or_, conditions)


class OpenPage(Page):
    """A page of a list whose length is not known exactly: it knows only whether a next page exists."""

    def __init__(self, object_list, number, paginator, more):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self):
        return self.more

    def end_index(self):
        return self.start_index() + len(self.object_list) - 1 if self.object_list else 0

    @property
    def past_the_end(self):
        """An estimate promised this page but the rows ended before it."""
        return not self.object_list and self.number > 1


class ChangeListPaginator(Paginator):
    """Pages of a changelist counted by ``count_rows``; pages past an inexact count still work.

    A page past an inexact count reads one row more than it shows, to know
    whether a next page exists; it holds the rows it read (a list), or, for a
    ``list_editable`` formset (``queryset_pages``), a QuerySet of those rows.
    The count's time limit changes only how the count is shown, never the rows.
    """

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, *,
                 exact_count_max=EXACT_COUNT_MAX, count_time_limit=COUNT_TIME_LIMIT,
                 queryset_pages=False):  # fmt: skip
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.exact_count_max = exact_count_max
        self.count_time_limit = count_time_limit
        self.queryset_pages = queryset_pages
        self.known_pages = 1
        #: What ``row_count`` counts: the list itself, or a quicker query with as many rows.
        self.counted = object_list

    @cached_property
    def row_count(self):
        if not isinstance(self.object_list, models.QuerySet):
            return RowCount(len(self.object_list))
        return count_rows(self.counted, self.exact_count_max, self.count_time_limit)

    @property
    def count(self):
        return self.row_count.value

    @property
    def num_pages(self):
        """For an inexact count, at least up to the last page a page has shown to exist."""
        if self.row_count.exact:
            return super().num_pages
        return max(math.ceil(max(1, self.count - self.orphans) / self.per_page), self.known_pages)

    def validate_number(self, number):
        """Django's check; past an inexact count, any page whose rows an OFFSET can still reach.

        Such a page is not checked against a count, so its number is bounded by
        what the database takes: SQLite refuses an OFFSET past 64 bits (a 500).
        Past it, the page is past the end (``EmptyPage``), which the changelist
        answers as Django does: a redirect to ``?e=1``.
        """
        if self.row_count.exact:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        if number * self.per_page + 1 > MAX_OFFSET:
            raise EmptyPage(self.error_messages["no_results"])
        return number

    def page(self, number):
        """An exact count pages as Django does; otherwise read one row more than a page to know what follows."""
        if self.row_count.exact:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self.open_page(self.rows(self.object_list, bottom, self.per_page + 1), number)

    @staticmethod
    def rows(queryset, start, count):
        """``queryset[start:start + count]``; deep in the list, the pks first, then their rows.

        An OFFSET makes the database read every row it skips; skipping pks
        only (a deferred join) reads and copies less per row.
        """
        if start < DEFERRED_JOIN_FROM:
            return list(queryset[start : start + count])
        pks = list(queryset.values_list("pk", flat=True)[start : start + count])
        return list(queryset.filter(pk__in=pks)) if pks else []  # in the list's own order

    def keyset_page(self, number, keys, cursor):
        """Page ``number`` read as "the rows after (before) the cursor's row": no deep OFFSET, however deep.

        The cursor may pass over a few pages' rows first (a numbered link near
        the page it was made on): an OFFSET of at most ``NEARBY_PAGES - 1`` pages.
        """
        number = self.validate_number(number)
        after, values, skip = cursor
        following = self.object_list.filter(keyset_condition(keys, values, after))
        end = skip + self.per_page
        if after:
            return self.open_page(list(following[skip : end + 1]), number)
        rows = list(following.reverse()[skip : end + 1])
        if len(rows) <= self.per_page:
            if skip:  # fewer rows before the cursor than the link counted on (rows went): read it by number
                return self.page(number)
            number = 1  # nothing before these rows: this is the first page
        page = OpenPage(self.page_rows(rows[: self.per_page][::-1]), number, self, True)
        self.known_pages = max(self.known_pages, number + 1)
        return page

    def page_rows(self, rows):
        """What a page holds: ``rows``, or for a ``list_editable`` formset a QuerySet of them, in the list's order."""
        if not self.queryset_pages:
            return rows
        return self.object_list.filter(pk__in=[row.pk for row in rows])

    def open_page(self, rows, number):
        """The page of ``rows`` (read one past the page) of an inexactly counted list."""
        more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        page = OpenPage(self.page_rows(rows), number, self, more)
        self.known_pages = max(self.known_pages, number + more if rows else number - 1)
        seen = (number - 1) * self.per_page + len(rows)
        if rows and self.row_count.kind == AT_LEAST and seen + more > self.row_count.value:
            # What the page proved is a better lower bound than what the count reached. An empty page
            # (past the last row) proves nothing: the rows before it need not exist.
            self.row_count = RowCount(seen, AT_LEAST if more else EXACT)
        return page
