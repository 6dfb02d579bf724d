"""The shipped legacy schema: which SQL file a backend runs, its statements and its tables.

The SQL files in ``sql/`` are the source of truth for the legacy tables (the
models are ``managed = False``); ``create_legacy_schema`` runs them and the
tests compare them with the models.
"""

import re
from pathlib import Path

import sqlparse

SQL_DIR = Path(__file__).resolve().parent / "sql"

#: connection.vendor -> the dialect file written for it.
SCHEMA_FILES = {
    "mysql": SQL_DIR / "schema.mysql.sql",
    "sqlite": SQL_DIR / "schema.sqlite.sql",
}

_CREATED = re.compile(r"^\s*CREATE\s+(?:TABLE|VIEW)\s+[`\"]?(\w+)[`\"]?", re.IGNORECASE)
_INDEXED = re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+\S+\s+ON\s+[`\"]?(\w+)[`\"]?", re.IGNORECASE)


def schema_file(vendor):
    """The dialect file for ``vendor``; ``LookupError`` when none is shipped."""
    try:
        return SCHEMA_FILES[vendor]
    except KeyError:
        raise LookupError(
            f"No legacy schema for database vendor {vendor!r}; shipped: {sorted(SCHEMA_FILES)}."
        ) from None


def statements(sql):
    """Split ``sql`` into its statements, without comments or the closing ``;`` (``sqlparse``)."""
    code = sqlparse.format(sql, strip_comments=True)
    return [statement for statement in sqlparse.split(code, strip_semicolon=True) if statement]


def created_names(sql):
    """Tables and views the statements create, in file order."""
    return [match[1] for statement in statements(sql) if (match := _CREATED.match(statement))]


def target(statement):
    """The table or view a ``CREATE TABLE``/``VIEW``/``INDEX`` statement is about; None for any other statement."""
    match = _CREATED.match(statement) or _INDEXED.match(statement)
    return match[1] if match else None
