"""Reading an export's rows: the query, the server-side cursor and the columns plan."""

import contextlib
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import Error as DatabaseError
from django.db import connections, models
from import_export import fields as ie_fields
from import_export import resources as ie_resources
from import_export import widgets

from admin_site.adapters.django import compile_values_list, without_limits
from admin_site.adapters.pymysql import forget_unread_rows
from admin_site.transfers.exports.cells import (
    CSV,
    NATIVE,
    TEXT_FIELDS,
    TEXT_VALUES,
    _cell,
    _Env,
    _guard,
    _raw_mysql_renderer,
    _renders_raw,
    _value_renderer,
    escape_formula,
)

#: Rows per fetch and per rendered chunk: about what is in memory at any time, and how many
#: rows share one query for M2M/instance columns.
CHUNK_SIZE = 1000
#: Seconds the server waits for a slow reader (a paused download) before it drops the stream.
NET_WRITE_TIMEOUT = 3600
# Reading rows ----------------------------------------------------------------------


def open_stream_connection(alias):
    """A new connection to ``alias``, outside ``connections``: one streamed read owns it and closes it."""
    connection = connections.create_connection(alias)
    # An abandoned response may be collected, and so closed, by another thread.
    connection.inc_thread_sharing()
    return connection


def streams_server_side(alias):
    """Whether an export of ``alias`` reads its rows through a server-side cursor: MySQL, outside a transaction.

    Inside a transaction (an atomic block, a test) only the transaction's
    connection sees its uncommitted rows, so the export reads there.
    """
    connection = connections[alias]
    return connection.vendor == "mysql" and not connection.in_atomic_block


def _server_side_chunks(alias, sql, params, width):
    """Rows of ``sql`` in chunks through an unbuffered cursor on a connection of their own.

    Rows are cut to their first ``width`` columns (a DISTINCT query adds its
    ordering columns after them).  The connection opens on the first
    ``next()`` and closes when the rows end, on ``close()`` or when the
    generator is collected.  Closing early closes the connection without
    reading the rest: closing an unbuffered cursor would read (and discard)
    every remaining row first.
    """
    connection = open_stream_connection(alias)
    cursor = None
    done = False
    try:
        connection.ensure_connection()
        with connection.wrap_database_errors:
            with connection.connection.cursor() as setup:
                setup.execute(f"SET SESSION net_write_timeout = {int(NET_WRITE_TIMEOUT)}")
            cursor = connection.connection.cursor(connection.Database.cursors.SSCursor)
            cursor.execute(sql, params)
        cut = len(cursor.description) > width
        while True:
            with connection.wrap_database_errors:
                rows = cursor.fetchmany(CHUNK_SIZE)
            if not rows:
                break
            yield [row[:width] for row in rows] if cut else rows
        cursor.close()
        done = True
    finally:
        if cursor is not None and not done:
            forget_unread_rows(cursor)
        with contextlib.suppress(DatabaseError):
            connection.close()


def _row_chunks(queryset, paths, alias, server_side, raw_positions=frozenset()):
    """Lists of up to CHUNK_SIZE ``values_list(*paths)`` rows, converted as Django converts them.

    ``server_side`` (see ``streams_server_side``) reads them through an
    unbuffered cursor of their own; there, values at ``raw_positions`` keep
    the driver's value, and the caller renders them from that directly (see
    ``_Plan.raw_positions``).  Otherwise Django reads them in chunks.
    """
    if server_side:
        compiled = compile_values_list(queryset, paths, alias)
        if compiled is None:
            return
        sql, params, convert = compiled
        source = _server_side_chunks(alias, sql, params, len(paths))
        rows = convert(chain.from_iterable(source), keep=raw_positions)
    else:
        # A changelist's prefetches mean nothing for tuples: spare Django looking at each chunk for them.
        source = rows = queryset.values_list(*paths).prefetch_related(None).iterator(chunk_size=CHUNK_SIZE)
    try:
        while chunk := list(islice(rows, CHUNK_SIZE)):
            yield chunk
    finally:
        source.close()


# Columns ---------------------------------------------------------------------------

VALUE, M2M, INSTANCE = "value", "m2m", "instance"


@dataclass(eq=False)
class _Column:
    """How one export field gets its cells: from the row, per chunk from a relation, or from an instance."""

    field: ie_fields.Field
    source: str
    path: str = ""  # values_list path (VALUE)
    render: str = "generic"  # how a VALUE is rendered (see _value_renderer)
    text_typed: bool | str = False  # text people typed: CSV/TSV cells get the formula guard (or TEXT_VALUES)
    value_field: models.Field | None = None  # the model field the value comes from
    index: int = 0  # position of ``path`` in the row


class _Plan:
    """The columns of one export and the query that feeds them."""

    def __init__(self, resource, queryset, selected_fields):
        # Where the queryset reads: the panel's database or, for a list's export, one of its replicas.
        self.resource, self.queryset, self.alias = resource, queryset, queryset.db
        self.selected_fields = selected_fields
        self.model = queryset.model
        self._limit = None
        cls = type(resource)
        # A resource that renders whole rows itself gets instances for everything.
        self.whole_rows = cls.export_resource is not ie_resources.Resource.export_resource
        custom_field_export = cls.export_field is not ie_resources.Resource.export_field
        self.columns = [
            _Column(f, INSTANCE) if custom_field_export or self.whole_rows else self._column(f)
            for f in resource.get_export_fields(selected_fields)
        ]
        needs_pk = self.whole_rows or any(c.source != VALUE for c in self.columns)
        paths = ["pk"] if needs_pk else []
        for column in self.columns:
            if column.source == VALUE and column.path not in paths:
                paths.append(column.path)
        self.paths = paths or ["pk"]
        self._layout()

    def limit(self, count):
        self._limit = count

    def _layout(self):
        """Where each path lands in a row: ``values_list`` gives the fields in the order asked."""
        self.pk_index = self.paths.index("pk") if "pk" in self.paths else None
        for column in self.columns:
            if column.source == VALUE:
                column.index = self.paths.index(column.path)

    # -- classifying fields ------------------------------------------------------

    def _column(self, field):
        """A VALUE column when a row can hold the field's value, else M2M or INSTANCE."""
        if _needs_instance(self.resource, field) or not field.attribute:
            return _Column(field, INSTANCE)
        attribute = field.attribute
        resolved = _resolve(self.model, attribute)
        if resolved is None:
            if _selects_beyond_fields(self.queryset, attribute):
                # An annotation (or an extra select): its type is not known here, so text values are guarded.
                return _Column(field, VALUE, path=attribute, text_typed=TEXT_VALUES)
            return _Column(field, INSTANCE)
        model_field, by_id = resolved
        widget = field.widget
        render = _widget_render(widget)
        if model_field.many_to_many:
            if render == "m2m" and "__" not in attribute and not model_field.auto_created:
                target = _resolve(model_field.related_model, widget.field)
                return _Column(field, M2M, value_field=model_field, text_typed=_is_text(target))
            return _Column(field, INSTANCE)
        if model_field.is_relation and not by_id:
            # The attribute is the related object: only the stock FK widget's
            # "object.<field>" rendering can be read from the row.
            if render != "related":
                return _Column(field, INSTANCE)
            path = f"{attribute}__{widget.field}"
            target = _resolve(self.model, path)
            if target is None or target[0].many_to_many:
                return _Column(field, INSTANCE)
            return _Column(field, VALUE, path=path, render="raw", text_typed=_is_text(target), value_field=target[0])
        value_field = model_field.target_field if model_field.is_relation else model_field
        if render == "related":
            # key_is_id renders the id; otherwise the widget expects an object, not this value.
            render = "fk_id" if widget.key_is_id else "generic"
        return _Column(
            field, VALUE, path=attribute, render=render, text_typed=_is_text(resolved), value_field=value_field
        )

    # -- rendering ---------------------------------------------------------------

    def rendered(self, mode, sheet=None):
        """Yield (rows, count) per chunk: rows of cells in export order, ready for a writer (XLSX: on ``sheet``)."""
        env = _Env(self.alias, sheet)
        server_side = streams_server_side(self.alias)
        raw = self.raw_positions(mode) if server_side else frozenset()
        renderers = [self._renderer(column, mode, env, column.index in raw) for column in self.columns]
        queryset = self.queryset if self._limit is None else self.queryset[: self._limit]
        chunks = _row_chunks(queryset, self.paths, self.alias, server_side, raw)
        try:
            for rows in chunks:
                yield self._render_chunk(rows, renderers, mode, env), len(rows)
        finally:
            chunks.close()

    def _whole_rows(self, instances, mode, env):
        """Rows from a resource that overrides ``export_resource``: its cells, guarded."""
        export_resource, selected = self.resource.export_resource, self.selected_fields
        if mode == NATIVE:
            native = [export_resource(obj, selected, force_native_type=True) for obj in instances]
            return [[_cell(v, env) for v in row] for row in native]
        if mode == CSV:
            return [[escape_formula(v) for v in export_resource(obj, selected)] for obj in instances]
        return [export_resource(obj, selected) for obj in instances]

    def _render_chunk(self, rows, renderers, mode, env):
        """Cells column by column (C-level map over the rows), zipped back into rows."""
        pks = list(map(itemgetter(self.pk_index), rows)) if self.pk_index is not None else None
        instances = self._instances(pks) if self.whole_rows or any(c.source == INSTANCE for c in self.columns) else {}
        if self.whole_rows:
            return self._whole_rows([instances[pk] for pk in pks if pk in instances], mode, env)
        cells = []
        for column, render in zip(self.columns, renderers, strict=True):
            if column.source == VALUE:
                values = map(itemgetter(column.index), rows)
            elif column.source == M2M:
                # A list, not a generator: a generator would read ``related`` when the rows are
                # zipped, after the loop, and every many-to-many column would show the last one's.
                related = self._m2m(column, pks)
                values = [related.get(pk, "") for pk in pks]
            else:
                values = (instances.get(pk) for pk in pks)
            cells.append(values if render is None else map(render, values))
        if not cells:
            return [()] * len(rows)
        return zip(*cells, strict=True)

    def raw_positions(self, mode):
        """Row positions rendered straight from PyMySQL's values, skipping Django's converters (server-side reads).

        On MySQL, Django's converters only make datetimes aware and wrap
        UUID strings, and the renderers undo both (local time, text): work
        done twice for every datetime or UUID cell.  A position qualifies when
        every column reading it can render the driver's value.
        """
        if connections[self.alias].vendor != "mysql" or isinstance(self.model._meta.pk, models.CompositePrimaryKey):
            return frozenset()
        capable, incapable = set(), set()
        for column in self.columns:
            if column.source == VALUE:
                (capable if _renders_raw(column, mode) else incapable).add(column.index)
        return frozenset(capable - incapable)

    def _renderer(self, column, mode, env, raw=False):
        """value -> cell for ``column`` in ``mode``; None when the value is the cell."""
        if column.source == VALUE:
            return _raw_mysql_renderer(column, mode, env) if raw else _value_renderer(column, mode, env)
        if column.source == M2M:
            return _guard(mode, column.text_typed, env)
        export_field = self.resource.export_field
        field = column.field
        if mode == NATIVE:
            return lambda obj: "" if obj is None else _cell(export_field(field, obj, force_native_type=True), env)
        guard = _guard(mode, True, env)
        if guard is None:
            return lambda obj: "" if obj is None else export_field(field, obj)
        return lambda obj: "" if obj is None else guard(export_field(field, obj))

    # -- per-chunk queries -------------------------------------------------------

    def _instances(self, pks):
        """pk -> instance for a chunk, from the export's own queryset (annotations, select_related)."""
        base = without_limits(self.queryset).order_by()
        found = {}
        for batch in _batches(pks, self.alias):
            found.update((obj.pk, obj) for obj in base.filter(pk__in=batch))
        return found

    def _m2m(self, column, pks):
        """pk -> the relation rendered as ManyToManyWidget does: ``widget.field`` values, joined, in ``.all()`` order.

        Two queries a chunk, both on indexes: the relation's rows of these
        owners, then the related rows through the related model's default
        manager (its filters and ordering, as ``.all()`` applies them).  One
        joined query ordered by the related model let MariaDB scan the whole
        relation table per chunk.
        """
        relation, widget = column.value_field, column.field.widget
        through = relation.remote_field.through
        source = through._meta.get_field(relation.m2m_field_name()).attname
        target = through._meta.get_field(relation.m2m_reverse_field_name()).attname
        links = {}
        for batch in _batches(pks, self.alias):
            rows = through._base_manager.db_manager(self.alias).filter(**{f"{source}__in": batch})
            for owner, related in rows.values_list(source, target):
                links.setdefault(owner, []).append(related)
        wanted = list({related for related_ids in links.values() for related in related_ids})
        manager = relation.related_model._default_manager.db_manager(self.alias)
        rank = {}
        for batch in _batches(wanted, self.alias):
            # Ordered per batch; the batches of one chunk rarely exceed one (CHUNK_SIZE related rows).
            for related, value in manager.filter(pk__in=batch).values_list("pk", widget.field):
                rank[related] = (len(rank), str(value))
        joined = {}
        for owner, related_ids in links.items():
            found = sorted(rank[related] for related in related_ids if related in rank)
            joined[owner] = widget.separator.join(value for _, value in found)
        return joined


def _batches(pks, alias):
    size = connections[alias].features.max_query_params or len(pks) or 1
    size = min(size, CHUNK_SIZE)
    for start in range(0, len(pks), size):
        yield pks[start : start + size]


def _selects_beyond_fields(queryset, name):
    """Whether ``name`` is a column ``queryset`` selects besides the model's fields: an annotation or extra select.

    Paths through the model's fields are left out: one that ``_resolve``
    refused (many-to-many, reverse) would repeat a row per related row.
    """
    if _get_field(queryset.model._meta, name.split("__")[0]) is not None:
        return False
    try:
        queryset.values_list(name)
    except FieldError:
        return False
    return True


def _needs_instance(resource, field):
    """A dehydrate method or a Field subclass that exports its own way needs the instance."""
    method = field.get_dehydrate_method(resource.get_field_name(field))
    if callable(method) or getattr(resource, method, None) is not None:
        return True
    return type(field).export is not ie_fields.Field.export or type(field).get_value is not ie_fields.Field.get_value


def _resolve(model, path):
    """(model field, path ends at its id column) for a path through forward FK/O2O relations, else None."""
    opts = model._meta
    parts = path.split("__")
    for part in parts[:-1]:
        relation = _get_field(opts, part)
        if relation is None or not relation.concrete or not (relation.many_to_one or relation.one_to_one):
            return None
        opts = relation.related_model._meta
    model_field = _get_field(opts, parts[-1])
    if model_field is None or not model_field.concrete:
        return None
    by_id = model_field.is_relation and parts[-1] == model_field.attname != model_field.name
    return model_field, by_id


def _get_field(opts, name):
    if name == "pk":
        return opts.pk
    try:
        return opts.get_field(name)
    except FieldDoesNotExist:
        return None


def _is_text(resolved):
    if resolved is None:
        return True
    model_field, _ = resolved
    if model_field.is_relation:
        model_field = model_field.target_field
    return isinstance(model_field, TEXT_FIELDS)


def _widget_render(widget):
    """Which stock rendering ``widget`` uses; "generic" means call its render()."""
    render = type(widget).render
    if render is widgets.ManyToManyWidget.render:
        return "m2m"
    if render is widgets.ForeignKeyWidget.render:
        return "generic" if widget.use_natural_foreign_keys else "related"
    if not getattr(widget, "coerce_to_string", True):
        return "generic"
    return {
        widgets.Widget.render: "str",
        widgets.CharWidget.render: "str",
        widgets.NumberWidget.render: "number",
        widgets.BooleanWidget.render: "bool",
        widgets.DateWidget.render: "date",
        widgets.DateTimeWidget.render: "datetime",
    }.get(render, "generic")
