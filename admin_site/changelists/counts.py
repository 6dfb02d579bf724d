"""Row counts that never scan a big table: estimated, exact up to a bound, or "more than N".

A count is one of three things, and the page says which:

* **estimated** — an unfiltered list of a big table takes the database's own
  row estimate (MariaDB/MySQL table statistics), read on the panel's alias;
* **exact** — everything else is counted, but only up to ``exact_count_max``
  rows, in steps of ten times as many rows while that stays cheap, and within
  ``count_time_limit`` seconds (a statement time limit on MariaDB/MySQL, a
  progress handler on SQLite);
* **at least** — when one of those bounds is hit: "more than N".
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DatabaseError, connections

from admin_site.adapters.django import selects_whole_table

EXACT, ESTIMATED, AT_LEAST = "exact", "estimated", "at least"


#: The count's bounds (``BigTableListMixin`` attributes): rows counted exactly at most, and seconds a count
#: may take (about what a whole page costs) before the list says "more than N".
EXACT_COUNT_MAX, COUNT_TIME_LIMIT = 10_000, 0.02


#: A count's first step, in rows (``count_rows``): it goes on, ten times as far each step, while that is cheap.
COUNT_STEP = 1000


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
    ``extra(where=...)``) is a condition on the rows; a multi-table child
    counts the rows of its own table, one per child.
    """
    return selects_whole_table(queryset)


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
    a row found through an index on the filtered column is cheap, a row found
    through a join costs many times as much: the first counts on to "more than
    10,000", the second stops at "more than 1,000".
    """
    most = min(counted * 10, exact_count_max)
    if most <= counted or seconds + step_seconds * (most / counted) > count_time_limit:
        return 0
    return most
