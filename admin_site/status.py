"""Health of each panel's database, for the console home page."""

from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor


def database_status(alias):
    """Reachable or not, engine and version, and how many migrations are unapplied."""
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
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return {**status, "reachable": False, "error": str(exc)}
    return {**status, "reachable": True, "version": version, "unapplied": len(plan)}
