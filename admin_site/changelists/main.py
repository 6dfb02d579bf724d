"""Changelists that stay fast as tables grow: counts that never scan, pages past them.

Django's changelist counts its rows with ``COUNT(*)`` twice per page (the
filtered count and the "N total", ticket #8408): on InnoDB that reads the whole
table.  Here a count is one of three things, and the page says which:

* **estimated** — an unfiltered list of a big table takes the database's own
  row estimate (MariaDB/MySQL table statistics), read on the panel's alias;
* **exact** — everything else is counted, but only up to ``exact_count_max``
  rows, in steps of ten times as many rows while that stays cheap, and within
  ``count_time_limit`` seconds (a statement time limit on MariaDB/MySQL, a
  progress handler on SQLite);
* **at least** — when one of those bounds is hit: "more than N".

``ChangeListPaginator`` numbers pages from such a count and serves pages past
an inexact one: each page reads one row more than it shows to know whether
there is a next page, so next/previous navigation works to the real last row.
``DatabaseChangeList`` uses it for the result count and the "N total" count,
and its date hierarchy reads only the first and last date (index look-ups)
instead of ``SELECT DISTINCT`` over every row.

What the query string brings (a cursor, a page number, lookups) is checked
before the database sees it: a bad lookup or page is redirected to ``?e=1``
as Django does, and a bad cursor is ignored (the page is read by its number).
"""

import base64
import datetime
import json
import math
import operator
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce

from django.conf import settings
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, ValidationError
from django.core.paginator import EmptyPage, InvalidPage, Page, PageNotAnInteger, Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections, models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.http import urlencode

from admin_site.changelists.search import known_common, matches, remember_common, search_key, walking

EXACT, ESTIMATED, AT_LEAST = "exact", "estimated", "at least"
#: Query parameter of next/previous links: the row a page starts after (or ends before).
CURSOR_VAR = "cursor"
#: From this many rows in, a numbered page reads its pks before its rows (``ChangeListPaginator._rows``)
#: and the numbered links of the pages around it are read from its rows (``DatabaseChangeList.page_link``).
DEFERRED_JOIN_FROM = 1000
#: The count's bounds (``DatabaseAdminMixin`` attributes): rows counted exactly at most, seconds a count may
#: take (about what a whole page costs), and seconds a FULLTEXT search's count may take.
EXACT_COUNT_MAX, COUNT_TIME_LIMIT, SEARCH_TIME_LIMIT = 10_000, 0.02, 0.015
#: A count's first step, in rows (``count_rows``): it goes on, ten times as far each step, while that is cheap.
COUNT_STEP = 1000
#: How far from the current page a numbered link carries a cursor: Django's elided page range shows 3 each side.
NEARBY_PAGES = 3

#: The largest OFFSET (and LIMIT) every supported database takes: SQLite's, a signed 64-bit integer.
MAX_OFFSET = 2**63 - 1

#: Server error codes for "the statement was stopped": MariaDB's max_statement_time (1969), MySQL's
#: MAX_EXECUTION_TIME (3024), an interrupted statement (1317), and InnoDB's "aborted" (188), which is
#: what MariaDB reports when the time limit stops a FULLTEXT search.
TIMEOUT_ERRORS = {1969, 3024, 1317, 188}


class StatementTimeout(Exception):
    """A statement was stopped by ``statement_time_limit``."""


@dataclass(frozen=True)
class RowCount:
    """How many rows a list has, and how sure the number is."""

    value: int
    kind: str = EXACT
    #: Seconds the count took (its whole time limit when it was stopped).
    seconds: float = 0.0
    #: The count ran out of time (rather than rows).
    stopped: bool = False

    @property
    def exact(self):
        return self.kind == EXACT

    def __str__(self):
        if self.kind == ESTIMATED:
            return f"about {self.value:,} (estimated)"
        if self.kind == AT_LEAST:
            return f"more than {self.value:,}"
        return f"{self.value:,}"


def estimable(queryset):
    """True when ``queryset`` means "every row of one table": its table's row estimate applies.

    A filter of any kind (list filters, search, a proxy's filtered manager,
    ``extra(where=...)``) puts a condition in ``query.where``; a multi-table
    child counts the rows of its own table, one per child.
    """
    query = queryset.query
    return not (query.where or query.distinct or query.combinator or query.is_sliced or query.group_by)


def table_estimate(queryset):
    """The database's row estimate for ``queryset``'s table, on the queryset's alias; None if it has none.

    MariaDB/MySQL keep it in the table statistics (``information_schema.TABLES.TABLE_ROWS``,
    what ``SHOW TABLE STATUS`` shows); views and other backends have none.
    """
    connection = connections[queryset.db]
    if connection.vendor != "mysql" or not estimable(queryset):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else None


@contextmanager
def statement_time_limit(alias, seconds):
    """Stop any statement the block runs on ``alias`` after ``seconds``: raise ``StatementTimeout``.

    MariaDB: each SELECT runs as ``SET STATEMENT max_statement_time=... FOR ...``;
    MySQL: with a ``MAX_EXECUTION_TIME`` hint; SQLite: a progress handler
    interrupts it.  Nothing is left set on the connection afterwards.
    """
    connection = connections[alias]
    if connection.vendor == "mysql":
        if connection.mysql_is_mariadb:
            prefix = f"SET STATEMENT max_statement_time={seconds:.6f} FOR "
            queries = ("SELECT", "WITH")

            def limit(sql):
                return prefix + sql
        else:
            hint = f"SELECT /*+ MAX_EXECUTION_TIME({max(1, round(seconds * 1000))}) */"
            queries = ("SELECT",)

            def limit(sql):
                return sql.replace("SELECT", hint, 1)

        def wrapper(execute, sql, params, many, context):
            return execute(limit(sql) if sql.lstrip()[:6].upper().startswith(queries) else sql, params, many, context)

        try:
            with connection.execute_wrapper(wrapper):
                yield
        except DatabaseError as error:
            code = getattr(error.__cause__, "args", (None,))[0] if error.__cause__ else None
            if code in TIMEOUT_ERRORS or (error.args and error.args[0] in TIMEOUT_ERRORS):
                raise StatementTimeout(str(error)) from error
            raise
    elif connection.vendor == "sqlite":
        connection.ensure_connection()
        deadline = time.monotonic() + seconds
        connection.connection.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        try:
            yield
        except DatabaseError as error:
            if "interrupted" in str(error):
                raise StatementTimeout(str(error)) from error
            raise
        finally:
            connection.connection.set_progress_handler(None, 0)
    else:
        yield


def count_rows(queryset, exact_count_max, count_time_limit):
    """A ``RowCount`` for ``queryset`` that never reads more than ``exact_count_max`` rows.

    A table estimate above ``exact_count_max`` is taken as it is; below it the
    estimate is too rough (InnoDB's can be off by half) and the rows are
    counted, in steps (``next_count_step``): ``SELECT COUNT(*) FROM (... LIMIT
    n + 1)`` for ``n = COUNT_STEP``, then ten times as many, up to
    ``exact_count_max``.  Any statement is stopped at ``count_time_limit``;
    then the list has "more than" what was counted.
    """
    estimate = table_estimate(queryset)
    if estimate is not None and estimate > exact_count_max:
        return RowCount(estimate, ESTIMATED)
    started = time.monotonic()
    most, known = min(COUNT_STEP, exact_count_max), 0
    while most:
        step_started = time.monotonic()
        try:
            with statement_time_limit(queryset.db, max(count_time_limit - (step_started - started), 0.001)):
                counted = queryset.order_by()[: most + 1].count()
        except StatementTimeout:
            return RowCount(known, AT_LEAST, seconds=time.monotonic() - started, stopped=True)
        now = time.monotonic()
        if counted <= most:
            return RowCount(counted, EXACT, now - started)
        known, most = most, next_count_step(most, exact_count_max, now - started, now - step_started, count_time_limit)
    return RowCount(known, AT_LEAST, time.monotonic() - started)


def next_count_step(counted, exact_count_max, seconds, step_seconds, count_time_limit):
    """How far the next step of a count reads (ten times as far), or 0 when it would not be cheap.

    Only while ten times the last step's time still fits in ``count_time_limit``:
    a row of a filter on an indexed column costs a tenth of a microsecond, a row
    found through a join ten times that.  The first counts on to "more than
    10,000" in 2 ms; the second stops at "more than 1,000" instead of spending 25 ms.
    """
    most = min(counted * 10, exact_count_max)
    if most <= counted or seconds + step_seconds * (most / counted) > count_time_limit:
        return 0
    return most


def keyset_fields(queryset):
    """``[(field, descending), ...]`` when ``queryset`` is ordered by plain columns ending with a unique one.

    Then "the rows after this one" is a condition an index answers, whatever
    the page's depth (keyset pagination); otherwise None.
    """
    opts = queryset.model._meta
    keys = []
    for item in queryset.query.order_by:
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
        _sql, params = queryset.query.get_compiler(queryset.db).as_sql()
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


def keyset_condition(keys, values, after):
    """Rows after (or before) the row with ``values`` in the ordering ``keys``: an index range."""
    conditions, equal = [], {}
    for (field, descending), value in zip(keys, values, strict=True):
        lookup = "lt" if descending == after else "gt"
        conditions.append(models.Q(**equal, **{f"{field.attname}__{lookup}": value}))
        equal[field.attname] = value
    return reduce(operator.or_, conditions)


def cached_slice(queryset, rows):
    """``queryset`` (a page's slice) already evaluated to ``rows``: list_editable formsets need a queryset."""
    queryset._result_cache = list(rows)
    queryset._prefetch_done = True
    return queryset


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

    A FULLTEXT search (``admin_site.changelists.search``) is counted for at most
    ``search_time_limit``; when it cannot be counted exactly in that time, the
    word is a common one and its pages are read by walking the list
    (``search.walking``) for at most as long again, before the index answers
    them.  The search's later pages are walked without counting again
    (``search.known_common``).
    """

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, *,
                 exact_count_max=EXACT_COUNT_MAX, count_time_limit=COUNT_TIME_LIMIT,
                 search_time_limit=SEARCH_TIME_LIMIT):  # fmt: skip
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.exact_count_max = exact_count_max
        self.count_time_limit = count_time_limit
        self.search_time_limit = search_time_limit
        self.known_pages = 1
        self.walk = False
        #: What ``row_count`` counts: the list itself, or a quicker query with as many rows.
        self.counted = object_list

    @cached_property
    def row_count(self):
        if not isinstance(self.object_list, models.QuerySet):
            return RowCount(len(self.object_list))
        searched = bool(self.search_time_limit) and matches(self.object_list)
        key = search_key(self.object_list) if searched else None
        if searched and known_common(key):
            self.walk = True  # it could not be counted in time a moment ago: walk at once
            return RowCount(0, AT_LEAST, stopped=True)
        seconds = min(self.count_time_limit, self.search_time_limit) if searched else self.count_time_limit
        count = count_rows(self.counted, self.exact_count_max, seconds)
        self.walk = searched and not count.exact  # a word too common to count cheaply
        if self.walk:
            remember_common(key)
        return count

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
        rows, rows_qs = self._read(lambda queryset: self._rows(queryset, bottom, self.per_page + 1))
        return self._open_page(rows, number, rows_qs[bottom : bottom + self.per_page])

    def _read(self, read):
        """``(read(queryset), queryset)``: the walking list when the search's count ran out of time, else the list.

        The walk gets ``search_time_limit``; when it runs out too, the list
        (its FULLTEXT index) answers.
        """
        if self.walk:
            walked = walking(self.object_list)
            try:
                with statement_time_limit(walked.db, self.search_time_limit):
                    return read(walked), walked
            except StatementTimeout:
                pass
        return read(self.object_list), self.object_list

    @staticmethod
    def _rows(queryset, start, count):
        """``queryset[start:start + count]``; deep in the list, the pks first, then their rows.

        An OFFSET makes the database read every row it skips; skipping pks
        only (a deferred join) reads and copies less per row: page 5,000 of a
        million customers in about half the time.
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
        condition = keyset_condition(keys, values, after)
        end = skip + self.per_page
        if after:
            rows, rows_qs = self._read(lambda queryset: list(queryset.filter(condition)[skip : end + 1]))
            return self._open_page(rows, number, rows_qs.filter(condition)[skip:end])
        rows, rows_qs = self._read(lambda queryset: list(queryset.filter(condition).reverse()[skip : end + 1]))
        rows_qs = rows_qs.filter(condition)
        if len(rows) <= self.per_page:
            if skip:  # fewer rows before the cursor than the link counted on (rows went): read it by number
                return self.page(number)
            number = 1  # nothing before these rows: this is the first page
        page_rows = cached_slice(rows_qs.reverse()[skip:end], rows[: self.per_page][::-1])
        page = OpenPage(page_rows, number, self, True)
        self.known_pages = max(self.known_pages, number + 1)
        return page

    def _open_page(self, rows, number, page_queryset):
        more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        page = OpenPage(cached_slice(page_queryset, rows), number, self, more)
        self.known_pages = max(self.known_pages, number + more if rows else number - 1)
        seen = (number - 1) * self.per_page + len(rows)
        if rows and self.row_count.kind == AT_LEAST and seen + more > self.row_count.value:
            # What the page proved is a better lower bound than what the count reached. An empty page
            # (past the last row) proves nothing: the rows before it need not exist.
            self.row_count = RowCount(seen, AT_LEAST if more else EXACT)
        return page


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
