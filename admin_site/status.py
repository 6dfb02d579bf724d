"""Health of each panel's database, for the console home page."""

import time

from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor


def database_status(alias):
    """Reachable or not, engine and version, the latency of a ``SELECT 1``, and how many migrations are unapplied."""
    connection = connections[alias]
    status = {
        "alias": alias,
        "vendor": connection.display_name,
        "name": str(connection.settings_dict.get("NAME") or ""),
        "host": connection.settings_dict.get("HOST") or "local",
    }
    try:
        connection.ensure_connection()
        version = ".".join(str(part) for part in connection.get_database_version())
        latency = select_one_ms(connection)
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return {**status, "reachable": False, "error": str(exc)}
    return {**status, "reachable": True, "version": version, "latency_ms": latency, "unapplied": len(plan)}


def select_one_ms(connection):
    """Milliseconds for one ``SELECT 1`` round trip on an open connection: what every query pays at least."""
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SELECT 1")
        cursor.fetchone()
        return (time.perf_counter() - started) * 1000
