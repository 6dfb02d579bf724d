"""The private names of django that the console uses, each behind a small function of ours."""

from django.db.models.sql.query import Query

from admin_site.adapters import Private

#: Checked against the installed version by tests/test_adapters.py.
PRIVATE_NAMES = [
    # --- changelists ---
    Private("django.contrib.admin.templatetags.admin_list", "_coerce_field_name", ("field_name", "field_index")),
    Private("django.contrib.admin.utils", "_get_non_gfk_field", ("opts", "name")),
    Private("django.db.models.sql.query:Query", "get_compiler", ("self", "using", "connection", "elide_empty")),
    *(
        Private("django.db.models.sql.query:Query", name, sample=lambda: Query(None))
        for name in ("where", "distinct", "combinator", "is_sliced", "group_by")
    ),
    # --- exports ---
    Private("django.db.models.query:QuerySet", "_iterable_class", sample=lambda: _sample_queryset()),
    Private("django.db.models.sql.query:Query", "clear_limits", ("self",)),
    # Query.get_compiler: listed under changelists.
    Private("django.db.models.sql.compiler:SQLCompiler", "as_sql", ("self", "with_limits", "with_col_aliases")),
    Private("django.db.models.sql.compiler:SQLCompiler", "select", sample=lambda: _sample_compiler()),
    Private("django.db.models.sql.compiler:SQLCompiler", "get_converters", ("self", "expressions")),
    Private("django.db.models.sql.compiler:SQLCompiler", "apply_converters", ("self", "rows", "converters")),
    # --- composite keys ---
    Private("django.contrib.admin.sites:AdminSite", "_registry", sample=lambda: _sample_site()),
]


# --- changelists ---


def column_css_name(name, index):
    """The name in a ``list_display`` column's ``field-<name>`` class, as Django's result list writes it."""
    from django.contrib.admin.templatetags.admin_list import _coerce_field_name

    return _coerce_field_name(name, index)


def list_display_field(opts, name):
    """The model field a ``list_display`` name shows, as Django's result list finds it.

    Raises ``FieldDoesNotExist`` for a name that is no field (or a generic or
    reverse relation) and ``FieldIsAForeignKeyColumnName`` for ``<fk>_id``.
    """
    from django.contrib.admin.utils import _get_non_gfk_field

    return _get_non_gfk_field(opts, name)


def query_parameters(queryset):
    """The parameters ``queryset``'s SQL binds, compiled without running it; ``EmptyResultSet`` if it has none."""
    _sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    return params


def selects_whole_table(queryset):
    """True when ``queryset`` reads every row of its table once: no condition, DISTINCT, union, slice or grouping."""
    query = queryset.query
    return not (query.where or query.distinct or query.combinator or query.is_sliced or query.group_by)


# --- exports ---


def _sample_queryset():
    from django.db.models.query import QuerySet

    return QuerySet()


def _sample_compiler():
    from django.db.models.sql.compiler import SQLCompiler

    return SQLCompiler(Query(None), connection=None, using=None)


def is_model_queryset(queryset):
    """Whether ``queryset`` gives model instances, not the rows of ``values()`` or ``values_list()``."""
    from django.db.models.query import ModelIterable, QuerySet

    return isinstance(queryset, QuerySet) and queryset._iterable_class is ModelIterable


def without_limits(queryset):
    """A copy of ``queryset`` without its slice, so that it can be filtered (Django refuses to filter a slice)."""
    queryset = queryset.all()
    queryset.query.clear_limits()
    return queryset


def compile_values_list(queryset, fields, alias):
    """``queryset.values_list(*fields)`` compiled for ``alias``, not run: ``(sql, params, convert)``, or None.

    For reading the rows through a cursor of one's own (a server-side cursor
    on a connection of its own).  Each row starts with the fields, in their
    order; a DISTINCT query may add its ordering columns after them.
    ``convert(rows, keep=())`` turns such rows (an iterable) into the values
    ``values_list`` gives, except at the positions in ``keep``, which stay as
    the driver returned them.  None when the query can match no row
    (``filter(pk__in=[])``).
    """
    from django.core.exceptions import EmptyResultSet

    compiler = queryset.values_list(*fields).query.get_compiler(using=alias)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None
    if not sql:
        return None
    converters = compiler.get_converters([selected[0] for selected in compiler.select[: len(fields)]])

    def convert(rows, keep=frozenset()):
        wanted = {position: pair for position, pair in converters.items() if position not in keep}
        return compiler.apply_converters(rows, wanted) if wanted else rows

    return sql, params, convert


# --- composite keys ---


def _sample_site():
    from django.contrib.admin import AdminSite

    return AdminSite(name="private-names-sample")


def register_composite_key_admin(site, model, admin_class):
    """Register ``admin_class`` for ``model`` on ``site`` without ``AdminSite.register``'s composite-key refusal.

    What ``register`` does for an abstract-free, unswapped model once its checks pass: one
    ModelAdmin instance in the site's registry (Django 5.2 refuses ``_meta.is_composite_pk``).
    """
    if model in site._registry:
        from django.contrib.admin.exceptions import AlreadyRegistered

        raise AlreadyRegistered(f"The model {model.__name__} is already registered")
    site._registry[model] = admin_class(model, site)
