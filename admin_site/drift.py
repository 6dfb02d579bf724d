"""Schema drift: unmanaged models compared with the live tables they read, through Django's introspection.

An unmanaged model (``Meta.managed = False``) describes a table somebody else
owns; when the older system is upgraded, the table changes under the console and
the first query that touches a gone column is a 500.  ``database_drift(alias)``
finds such changes before that: a missing table, missing or extra columns, and
type, length and nullability differences.  It returns plain data; the system
check ``console.W010`` (``manage.py check --database legacy``) and the command
``manage.py legacy_drift`` present it.

In the web process, ``known_drift(alias)`` keeps the result in Django's cache
for ``CONSOLE_DRIFT_CACHE_SECONDS``: a drifted model's pages show a banner
naming the differences (``banner``, through the site's ``each_context``), the
console home counts drifted tables per panel, and ``SchemaDriftMiddleware``
answers a query that failed on a gone table or column with that banner on a
503 page instead of a 500.

Only public introspection is used (``table_names``, ``get_table_list``,
``get_table_description``, ``get_field_type``): the same calls ``inspectdb``
makes, so a difference reported here is one ``inspectdb`` would show.
"""

import logging
import re
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.db.migrations.recorder import MigrationRecorder
from django.template.response import TemplateResponse

from admin_site.conf import panel_apps
from admin_site.outages import is_unreachable

log = logging.getLogger(__name__)

#: Model field types that introspection can only ever read back as another type, because the
#: column Django creates for them is that type's column (an EmailField is a VARCHAR, a
#: DurationField a BIGINT).  Without this, every such field would be reported on every backend.
STORED_AS = {
    "SlugField": "CharField",
    "FileField": "CharField",
    "FilePathField": "CharField",
    "GenericIPAddressField": "CharField",
    "DurationField": "BigIntegerField",
    # A view over an AUTO_INCREMENT column, or a table whose key lost AUTO_INCREMENT, reads back as a
    # plain integer; the values are the same, only who picks new keys differs.
    "AutoField": "IntegerField",
    "BigAutoField": "BigIntegerField",
    "SmallAutoField": "SmallIntegerField",
    # A DATETIME that may hold MySQL's zero date: its own internal type keeps Django's MySQL backend from
    # converting the zero date before the field reads it (console/legacy/fields.py).
    "ZeroDateTimeField": "DateTimeField",
}

#: The MySQL column type a BooleanField may sit on.  MySQL has no boolean type: Django creates a
#: BooleanField as TINYINT(1), which introspection reads back as IntegerField (inspectdb writes
#: that; our legacy models fix it by hand, see console/legacy/models.py).  Any wider integer is drift.
MYSQL_BOOLEAN_TYPE = "tinyint"

#: A declared SQLite type with a size, in any case.  Django's SQLite introspection reads the size only
#: from lower-case declarations ("varchar(60)"), so a legacy schema written "VARCHAR(60)" has none.
SQLITE_SIZED = re.compile(r"^\s*(?:var)?char\s*\(\s*(\d+)\s*\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Difference:
    """One way a model and its live table disagree: ``kind`` is table, missing, extra, type, length or null."""

    kind: str
    column: str
    message: str

    def __str__(self):
        return self.message


@dataclass(frozen=True)
class ModelDrift:
    """A drifted model, its table and what differs (never empty)."""

    model: type
    table: str
    differences: tuple

    @property
    def label(self):
        return self.model._meta.label


def unmanaged_models(alias, panels=None):
    """Concrete unmanaged models of the apps that ``alias`` holds in ``CONSOLE_DATABASES``.

    Managed models are left out: migrations own their tables.  Proxies share
    their concrete model's table, which is checked once, through that model.
    """
    holders = panel_apps(settings.CONSOLE_DATABASES if panels is None else panels)
    return [
        model
        for config in apps.get_app_configs()
        if alias in holders.get(config.label, ())
        for model in config.get_models()
        if not model._meta.managed and not model._meta.proxy
    ]


def base_type(type_name):
    """The introspection type a model field type reads back as (see ``STORED_AS``)."""
    return STORED_AS.get(type_name, type_name)


def model_type(field):
    """The introspection type ``field``'s column should have; a foreign key has its target's column type."""
    if field.is_relation and field.many_to_one:
        field = field.target_field
    return base_type(field.get_internal_type())


def column_type(connection, info):
    """The type ``inspectdb`` would give the column, or None when Django cannot map it.

    inspectdb falls back to TextField with a comment for an unknown type (a
    PostGIS or vendor type, say); that is no evidence of drift, so it is skipped.
    """
    try:
        return base_type(connection.introspection.get_field_type(info.type_code, info))
    except KeyError:
        return None


def column_size(connection, info):
    """The column's size in characters, as inspectdb reads it (``display_size``), or None when unknown."""
    if info.display_size:
        return int(info.display_size)
    if connection.vendor == "sqlite" and (match := SQLITE_SIZED.match(info.type_code)):
        return int(match[1])
    return None


def types_agree(wanted, found, info, connection):
    """Whether a column of introspected type ``found`` (described by ``info``) holds a ``wanted`` field."""
    if found is None or wanted == found:
        return True
    if wanted == "BooleanField" and connection.vendor == "mysql":
        return getattr(info, "data_type", "").lower() == MYSQL_BOOLEAN_TYPE
    return False


def none_as_value(field, info, connection):
    """Whether a nullable field on a NOT NULL column writes ``None`` as a value there: no NULL ever reaches it.

    A MySQL zero-date field (``console/legacy/fields.py``) stores "no date" as ``0000-00-00``.
    """
    return field.null and not info.null_ok and field.get_db_prep_save(None, connection) is not None


def field_differences(field, info, connection, is_view):
    """Type, length and nullability differences between one field and its column."""
    differences = []
    wanted = model_type(field)
    found = column_type(connection, info)
    column = field.column
    if not types_agree(wanted, found, info, connection):
        differences.append(
            Difference("type", column, f"column {column} is {found} in the database, {wanted} in the model")
        )
        return differences  # length and precision mean nothing across types
    size = column_size(connection, info) if wanted == "CharField" else None
    if size and field.max_length:
        if size != field.max_length:
            differences.append(
                Difference(
                    "length",
                    column,
                    f"column {column} holds {size} characters in the database, {field.max_length} in the model",
                )
            )
    if wanted == "DecimalField" and info.precision and info.scale is not None:
        # SQLite reports no precision: compared only where the backend knows it (MySQL).
        if (info.precision, info.scale) != (field.max_digits, field.decimal_places):
            differences.append(
                Difference(
                    "type",
                    column,
                    f"column {column} is DECIMAL({info.precision},{info.scale}) in the database, "
                    f"({field.max_digits},{field.decimal_places}) in the model",
                )
            )
    # A view's nullability comes from its query and backends disagree on it (SQLite reports every
    # view column nullable), and a primary key holds no NULL whatever it is declared as (SQLite
    # reports INTEGER PRIMARY KEY without NOT NULL as nullable): neither is drift.
    if (
        not is_view
        and not field.primary_key
        and bool(info.null_ok) != field.null
        and not none_as_value(field, info, connection)
    ):
        if field.null:
            message = f"column {column} is NOT NULL in the database, nullable in the model"
        else:
            message = f"column {column} allows NULL in the database, not in the model"
        differences.append(Difference("null", column, message))
    return differences


def table_differences(model, connection, tables):
    """Every difference between ``model`` and its table; ``tables`` maps lower-cased names to TableInfo."""
    table = model._meta.db_table
    # Case-insensitive: MySQL with lower_case_table_names folds table names.
    info = tables.get(table.lower())
    if info is None:
        return [Difference("table", "", f"table {table} is missing")]
    try:
        with connection.cursor() as cursor:
            description = connection.introspection.get_table_description(cursor, info.name)
    except DatabaseError as error:
        # A view over a table that is gone or changed cannot be described (MySQL error 1146 or 1356).
        kind = "view" if info.type == "v" else "table"
        return [Difference("table", "", f"{kind} {table} cannot be read: {str(error)[:200]}")]
    # Column names are case-insensitive on MySQL and SQLite.
    columns = {column.name.lower(): column for column in description}
    is_view = info.type == "v"
    differences = []
    fields = [field for field in model._meta.concrete_fields if field.column]  # a CompositePrimaryKey has none
    for field in fields:
        column = columns.get(field.column.lower())
        if column is None:
            differences.append(Difference("missing", field.column, f"column {field.column} is missing"))
        else:
            differences.extend(field_differences(field, column, connection, is_view))
    known = {field.column.lower() for field in fields}
    for column in description:
        if column.name.lower() not in known:
            differences.append(
                Difference("extra", column.name, f"column {column.name} is in the table but not in the model")
            )
    return differences


def database_drift(alias, models=None):
    """``ModelDrift`` for every drifted model of ``alias`` (default: ``unmanaged_models(alias)``), in model order.

    Raises ``DatabaseError`` when the database cannot be read.
    """
    connection = connections[alias]
    models = unmanaged_models(alias) if models is None else models
    if not models:
        return []
    with connection.cursor() as cursor:
        tables = {info.name.lower(): info for info in connection.introspection.get_table_list(cursor)}
    drifted = []
    for model in models:
        differences = table_differences(model, connection, tables)
        if differences:
            drifted.append(ModelDrift(model, model._meta.db_table, tuple(differences)))
    return drifted


def unclaimed_tables(alias, models=None):
    """Tables and views of ``alias`` that no installed model reads, sorted: where a renamed table shows up.

    Django's own bookkeeping table (``django_migrations``) is left out.
    """
    connection = connections[alias]
    models = unmanaged_models(alias) if models is None else models
    claimed = {model._meta.db_table.lower() for model in models}
    claimed |= {name.lower() for name in connection.introspection.django_table_names()}
    claimed.add(MigrationRecorder.Migration._meta.db_table.lower())
    with connection.cursor() as cursor:
        names = connection.introspection.table_names(cursor, include_views=True)
    return sorted(name for name in names if name.lower() not in claimed)


@checks.register(checks.Tags.database)
def check_schema_drift(app_configs=None, databases=None, **kwargs):
    """``manage.py check --database ALIAS``: a Warning per unmanaged model whose table has drifted.

    Tagged ``database`` so plain ``check`` (and every server start) never
    touches a database.  Warnings, not errors: the rest of the panel still works.
    """
    messages = []
    for alias in databases or ():
        if alias not in settings.CONSOLE_DATABASES:
            continue
        try:
            drifted = database_drift(alias)
        except DatabaseError as error:
            messages.append(
                checks.Warning(
                    f"Could not compare the unmanaged models of '{alias}' with its tables: {error}",
                    obj=alias,
                    id="console.W011",
                )
            )
            continue
        for drift in drifted:
            messages.append(
                checks.Warning(
                    f"Table {drift.table} on '{alias}' has drifted from the model: "
                    + "; ".join(str(difference) for difference in drift.differences)
                    + ".",
                    hint=f"Run 'manage.py legacy_drift --database {alias}' to see the model inspectdb would write now.",
                    obj=drift.model,
                    id="console.W010",
                )
            )
    return messages


# -- the web process: a cached result, the banner and the page that replaces a 500 ---------------------


def cache_seconds():
    """How long a drift result is reused before the tables are read again (``CONSOLE_DRIFT_CACHE_SECONDS``)."""
    return getattr(settings, "CONSOLE_DRIFT_CACHE_SECONDS", 60)


def cache_key(alias):
    return f"console-drift:{alias}"


def remember(alias, drifted):
    """Keep ``{model label: ((kind, message), ...)}`` for ``alias`` in the cache, and return it.

    Only labels and strings are stored, so any cache backend (a Redis shared
    by every host) can hold it.  A cache that fails costs the cache, not the page.
    """
    found = {
        drift.label: tuple((difference.kind, str(difference)) for difference in drift.differences) for drift in drifted
    }
    try:
        cache.set(cache_key(alias), found, cache_seconds())
    except Exception:  # noqa: BLE001 - a cache server that is down (redis.ConnectionError) must not fail a page
        log.warning("Could not keep the schema drift of '%s' in the cache", alias, exc_info=True)
    return found


def known_drift(alias):
    """``{model label: ((kind, message), ...)}`` of ``alias``'s drifted models, read at most once per cache period.

    Empty for a panel without unmanaged models (no query at all) and when the
    database cannot be read: the outage page, not this, reports that.
    """
    if not unmanaged_models(alias):
        return {}
    try:
        found = cache.get(cache_key(alias))
    except Exception:  # noqa: BLE001 - see remember()
        found = None
    if found is not None:
        return found
    try:
        drifted = database_drift(alias)
    except DatabaseError:
        return {}
    return remember(alias, drifted)


def page_models(model):
    """The unmanaged models whose tables a page of ``model`` reads: its own and those its forward relations join."""
    concrete = model._meta.concrete_model
    related = [
        field.related_model
        for field in concrete._meta.get_fields()
        if field.is_relation and not field.auto_created and field.related_model
    ]
    return [candidate for candidate in [concrete, *related] if not candidate._meta.managed]


#: Differences that leave the model reading something the table no longer has.
LACKING = frozenset({"table", "missing"})


@dataclass(frozen=True)
class TableDrift:
    """What a page says about one drifted table it reads."""

    name: str
    table: str
    messages: tuple
    #: The table or one of the model's columns is gone: those fields cannot be read or written.
    lacking: bool


def drift_of(alias, model, known):
    """``TableDrift`` for each drifted table a page of ``model`` reads, per ``known``."""
    return [
        TableDrift(
            name=candidate._meta.verbose_name_plural,
            table=candidate._meta.db_table,
            messages=tuple(message for _kind, message in known[candidate._meta.label]),
            lacking=any(kind in LACKING for kind, _message in known[candidate._meta.label]),
        )
        for candidate in page_models(model)
        if candidate._meta.label in known
    ]


def model_admin_of(request):
    """The ModelAdmin whose page ``request`` is for (Django tags its URL callbacks ``model_admin``), or None."""
    match = getattr(request, "resolver_match", None)
    return getattr(match.func, "model_admin", None) if match else None


def banner(request, alias):
    """What the drift banner of this page says: ``drift_of()`` for its model, empty off model pages."""
    model_admin = model_admin_of(request)
    if model_admin is None or not page_models(model_admin.model):
        return []
    return drift_of(alias, model_admin.model, known_drift(alias))


class SchemaDriftMiddleware:
    """A model page whose query failed because its table or a column is gone: the drift banner, not a 500.

    On a database error (not an outage, which ``DatabaseOutageMiddleware``
    answers) on an unmanaged model's page, the tables are read again at once;
    if they have drifted, the answer is a 503 page naming every difference and
    the fresh result replaces the cached one.  Any other error is Django's.
    """

    template_name = "admin_site/drift.html"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DatabaseError) or is_unreachable(exception):
            return None
        model_admin = model_admin_of(request)
        if model_admin is None or not page_models(model_admin.model):
            return None
        site = model_admin.admin_site
        try:
            drifted = database_drift(site.alias)
        except DatabaseError:
            return None
        tables = drift_of(site.alias, model_admin.model, remember(site.alias, drifted))
        if not tables:
            return None
        log.error(
            "%s %s failed: the tables of %s on '%s' have drifted (%s)",
            request.method,
            request.path,
            model_admin.opts.label,
            site.alias,
            "; ".join(message for table in tables for message in table.messages),
        )
        request.schema_drift = True
        context = {
            **site.each_context(request),
            "title": f"{model_admin.opts.verbose_name_plural.capitalize()} cannot be shown",
            "opts": model_admin.opts,
            "drift_tables": tables,
        }
        return TemplateResponse(request, self.template_name, context, status=503).render()
