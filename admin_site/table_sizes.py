"""How many rows a panel's tables hold, cheaply, for the console home.

The home is opened often and a database may hold a million-row table, so no
table is ever counted in full: MySQL/MariaDB keep an estimate per table
(``information_schema.TABLES.TABLE_ROWS``, InnoDB's statistics); SQLite keeps
none, but after ``ANALYZE`` its ``sqlite_stat1`` table has one, and a table it
does not cover is counted up to ``COUNT_LIMIT`` rows ("more than" beyond).
Each row count says which of these it is.  The result is kept in Django's
cache for ``CACHE_SECONDS`` per database, whoever asks; what a user sees of it
is cut to the models they may view (``admin_site.views``).
"""

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connections

#: Seconds the sizes of one database are kept in the cache.
CACHE_SECONDS = 60
#: A table SQLite has no statistics for is counted up to this many rows.
COUNT_LIMIT = 10_000

#: How a row count was obtained, as the home says it.
ESTIMATE, STAT, COUNTED, AT_LEAST = "estimate", "sqlite_stat1", "counted", "more than"


def cache_key(alias):
    return f"console:table-sizes:{alias}"


def panel_tables(alias):
    """The tables of the concrete models whose apps ``alias`` holds (``CONSOLE_DATABASES``)."""
    labels = settings.CONSOLE_DATABASES[alias]["apps"]
    return {
        model._meta.db_table
        for label in labels
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
        if not model._meta.proxy
    }


def table_sizes(alias):
    """``{table: (rows, how)}`` for the panel's base tables (not views), from the cache when it has them."""
    try:
        sizes = cache.get(cache_key(alias))
    except Exception:  # noqa: BLE001 - a cache server that is down must not take the home with it
        sizes = None
    if sizes is None:
        sizes = measure(alias)
        try:
            cache.set(cache_key(alias), sizes, CACHE_SECONDS)
        except Exception:  # noqa: BLE001 - as above
            pass
    return sizes


def measure(alias):
    """Row counts of the panel's base tables on ``alias``, read now (see the module docstring for how)."""
    connection = connections[alias]
    wanted = panel_tables(alias)
    with connection.cursor() as cursor:
        present = {info.name for info in connection.introspection.get_table_list(cursor) if info.type == "t"} & wanted
        if connection.vendor == "mysql":
            cursor.execute(
                "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
            )
            estimates = {name: rows for name, rows in cursor.fetchall() if name in present and rows is not None}
            return {name: (int(rows), ESTIMATE) for name, rows in estimates.items()}
        stats = sqlite_stats(cursor) if connection.vendor == "sqlite" else {}
        sizes = {name: (stats[name], STAT) for name in present if name in stats}
        for name in sorted(present - set(stats)):
            rows = bounded_count(cursor, connection.ops.quote_name(name))
            sizes[name] = (COUNT_LIMIT, AT_LEAST) if rows > COUNT_LIMIT else (rows, COUNTED)
    return sizes


def sqlite_stats(cursor):
    """``{table: rows}`` from ``sqlite_stat1`` (written by ``ANALYZE``), empty when it is not there.

    Each row's ``stat`` starts with the number of rows of the table (or of the
    index, which for a full index is the same); the largest figure per table wins.
    """
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    if cursor.fetchone() is None:
        return {}
    cursor.execute("SELECT tbl, stat FROM sqlite_stat1")
    stats = {}
    for table, stat in cursor.fetchall():
        first = str(stat or "").split(" ", 1)[0]
        if first.isdigit():
            stats[table] = max(stats.get(table, 0), int(first))
    return stats


def bounded_count(cursor, quoted_table):
    """The table's rows, reading at most ``COUNT_LIMIT + 1`` of them."""
    cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {quoted_table} LIMIT %s) AS bounded", [COUNT_LIMIT + 1])  # noqa: S608 - a quoted model table
    return cursor.fetchone()[0]


def biggest(sizes, tables, limit=5):
    """The ``limit`` largest of ``tables`` (``{table: anything}``), as ``[(table, rows, how, anything)]``."""
    rows = [(table, *sizes[table], extra) for table, extra in tables.items() if table in sizes]
    rows.sort(key=lambda row: (-row[1], row[0]))
    return rows[:limit]
