"""Streaming exports: CSV, TSV, JSON and XLSX of any size, with flat memory.

Stock django-import-export builds the whole ``tablib.Dataset`` in memory
before the first byte goes out.  ``stream_export`` writes the same columns as
the resource (headers, export order, the widgets' rendering, ``dehydrate_``
methods) chunk by chunk, as an iterator of bytes for a
``StreamingHttpResponse`` or a file:

- Rows are read as ``values_list`` of the fields' attribute paths and rendered
  by the widgets' rules, fast-pathed for the stock widgets (same strings, so a
  CSV round-trips through the import).  Fields that need an instance
  (``dehydrate_<field>``, properties, custom ``Field`` classes) get instances,
  and many-to-many columns their values, with one query per chunk of rows.
- On MySQL/MariaDB ``QuerySet.iterator()`` does not stream: PyMySQL's default
  cursor reads the whole result into the client.  The rows come through an
  unbuffered server-side cursor (``SSCursor``) on a separate connection to
  the same alias, closed when the iterator ends, is closed or is garbage
  collected (an abandoned download).  Inside a transaction the export stays
  on the transaction's connection, which alone sees its uncommitted rows, and
  is buffered there.  Other backends stream with ``chunked_fetch``.
- Spreadsheet cells are guarded against formula injection (``escape_formula``).
- CSV/TSV: UTF-8 without a BOM (a BOM breaks naive consumers and the
  console's import takes UTF-8 either way), ``\\r\\n`` line ends, as tablib
  writes them.
- JSON: an array of objects holding the strings import-export renders (not
  JSON numbers), so a JSON export imports back exactly; not formula-escaped,
  since JSON is not opened as a spreadsheet.
- XLSX: typed cells (numbers, real dates), written by openpyxl's write-only
  workbook into temporary files and streamed out once complete; capped at
  ``settings.CONSOLE_XLSX_MAX_ROWS`` rows (see ``stream_export``).
"""

import contextlib
import csv
import datetime
import io
import json
import re
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain, islice
from operator import itemgetter

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist
from django.db import Error as DatabaseError
from django.db import connections, models
from django.db.models.query import ModelIterable, QuerySet
from django.db.models.sql.constants import MULTI
from django.utils import timezone
from django.utils.formats import number_format, sanitize_strftime_format
from import_export import fields as ie_fields
from import_export import resources as ie_resources
from import_export import widgets
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from admin_site.pinning import pinned_iterator, using_database

#: Rows per fetch and per rendered chunk: about what is in memory at any time (~3 KB a row
#: while a chunk is rendered), and how many rows share one query for M2M/instance columns.
CHUNK_SIZE = 1000
#: Default cap on XLSX rows (``settings.CONSOLE_XLSX_MAX_ROWS`` overrides it).
XLSX_MAX_ROWS = 200_000
#: Seconds the server waits for a slow reader (a paused download) before it drops the stream.
NET_WRITE_TIMEOUT = 3600
#: The built XLSX file stays in memory up to this size, then spills to disk.
XLSX_SPOOL_BYTES = 8 * 1024 * 1024
XLSX_READ_BYTES = 256 * 1024

#: Cells starting with these are formulas to a spreadsheet (OWASP CSV injection).
FORMULA_START = frozenset("=+-@\t\r")

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "tsv": ("text/tab-separated-values; charset=utf-8", "tsv"),
    "json": ("application/json", "json"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}

#: Model fields whose values are text typed in by people: the ones a formula can hide in.
TEXT_FIELDS = (models.CharField, models.TextField, models.FilePathField, models.FileField)

# Render modes: import-export's strings (JSON), the same with the formula guard
# on text columns (CSV/TSV), typed cells with every string guarded (XLSX).
TEXT, CSV, NATIVE = "text", "csv", "native"


@dataclass(eq=False)
class Export:
    """One export in progress: iterate ``chunks`` (bytes) into a response or a file.

    ``notice`` is a message for the user (None when there is nothing to say),
    ``row_limit`` the cap applied (XLSX only), ``rows`` the data rows written
    so far (final once ``chunks`` is exhausted: use it for the audit record).
    Closing ``chunks`` (or dropping it) releases the database connection.
    """

    chunks: object
    content_type: str
    extension: str
    notice: str | None = None
    row_limit: int | None = None
    rows: int = 0

    def close(self):
        self.chunks.close()


def escape_formula(value):
    """Prefix ``'`` to text a spreadsheet would run as a formula; anything else unchanged."""
    if type(value) is str and value[:1] in FORMULA_START:
        return "'" + value
    return value


def xlsx_max_rows():
    return getattr(settings, "CONSOLE_XLSX_MAX_ROWS", XLSX_MAX_ROWS)


def stream_export(resource, queryset, file_format, selected_fields=None):
    """Export ``queryset`` through ``resource`` as ``file_format``, streamed.

    The queryset is honoured as given (filters, search, ordering, a proxy's
    manager) on ``resource.using``; ``selected_fields`` limits the columns as
    import-export's export form does (resource export order).  The headers
    are written at once, the rows while ``chunks`` is iterated.

    XLSX exports are cut at ``xlsx_max_rows()`` rows, with ``notice`` saying
    so: a workbook is built whole before it can be sent (and Excel stops at
    about a million rows anyway), while CSV streams any size.  Cutting rather
    than refusing gives the user the file they can still use, and the notice
    says how to get every row.
    """
    if file_format not in FORMATS:
        raise ValueError(f"Unknown export format {file_format!r}: use one of {', '.join(FORMATS)}.")
    if not isinstance(queryset, QuerySet) or queryset._iterable_class is not ModelIterable:
        raise TypeError("stream_export() needs a model QuerySet (not values() or a list).")
    alias = resource.using
    content_type, extension = FORMATS[file_format]
    export = Export(chunks=iter(()), content_type=content_type, extension=extension)
    with using_database(alias):
        queryset = queryset.using(alias)
        resource.before_export(queryset)
        queryset = resource.filter_export(queryset).using(alias)
        headers = resource.get_export_headers(selected_fields)
        plan = _Plan(resource, queryset, selected_fields)
        if file_format == "xlsx":
            export.row_limit = xlsx_max_rows()
            total = queryset.count()
            if total > export.row_limit:
                export.notice = (
                    f"This XLSX file holds the first {export.row_limit:,} of {total:,} rows. "
                    "Export as CSV to get every row: CSV streams any size."
                )
            plan.limit(export.row_limit)
    writers = {
        "csv": lambda: _delimited(headers, plan, export, ","),
        "tsv": lambda: _delimited(headers, plan, export, "\t"),
        "json": lambda: _json(headers, plan, export),
        "xlsx": lambda: _xlsx(headers, plan, export, _sheet_title(queryset.model)),
    }
    export.chunks = pinned_iterator(writers[file_format](), alias)
    return export


# Writers ---------------------------------------------------------------------------


def _delimited(headers, plan, export, delimiter):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    yield _drain(buffer)
    for rows, count in plan.rendered(CSV):
        writer.writerows(rows)
        export.rows += count
        yield _drain(buffer)


def _drain(buffer):
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


def _json(headers, plan, export):
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    separator = ""
    yield b"["
    for rows, count in plan.rendered(TEXT):
        text = ",\n".join(dumps(dict(zip(headers, row, strict=True))) for row in rows)
        yield (separator + text).encode("utf-8")
        separator = ",\n"
        export.rows += count
    yield b"]"


def _xlsx(headers, plan, export, title):
    """Rows go into openpyxl's temporary sheet file, then the zipped workbook streams out.

    While the workbook is being built, an empty chunk follows each chunk of
    rows, so a consumer can show progress (``export.rows``).
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    built = None
    try:
        sheet.append([_text_cell(sheet, header) for header in headers])
        for rows, count in plan.rendered(NATIVE):
            for row in rows:
                sheet.append(row)
            export.rows += count
            yield b""
        built = tempfile.SpooledTemporaryFile(max_size=XLSX_SPOOL_BYTES)
        workbook.save(built)
        built.seek(0)
        while block := built.read(XLSX_READ_BYTES):
            yield block
    finally:
        if built is not None:
            built.close()
        _discard_sheet(sheet)


def _text_cell(sheet, value):
    """A header cell that stays text even if it starts with ``=``."""
    cell = WriteOnlyCell(sheet, value=str(value))
    cell.data_type = "s"
    return cell


def _discard_sheet(sheet):
    """Remove openpyxl's temporary sheet file if the workbook was never saved (an abandoned export)."""
    writer = getattr(sheet, "_writer", None)
    if writer is None:
        return
    with contextlib.suppress(Exception):
        if not sheet.closed:
            sheet.close()
    with contextlib.suppress(FileNotFoundError, ValueError):
        writer.cleanup()  # save() already removed it when the export completed


def _sheet_title(model):
    return re.sub(r"[\\/?*\[\]:]", " ", str(model._meta.verbose_name_plural).capitalize())[:31] or "Export"


# Reading rows ----------------------------------------------------------------------


def open_stream_connection(alias):
    """A new connection to ``alias``, outside ``connections``: one streamed read owns it and closes it."""
    connection = connections.create_connection(alias)
    # An abandoned response may be collected, and so closed, by another thread.
    connection.inc_thread_sharing()
    return connection


def _server_side_chunks(alias, sql, params, width):
    """Rows of ``sql`` in chunks through an unbuffered cursor on a connection of their own.

    The connection opens on the first ``next()`` and closes when the rows
    end, on ``close()`` or when the generator is collected.  Closing early
    closes the connection without reading the rest: closing an unbuffered
    cursor would read (and discard) every remaining row first.
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
        while True:
            with connection.wrap_database_errors:
                rows = cursor.fetchmany(CHUNK_SIZE)
            if not rows:
                break
            yield rows if width is None else [row[:width] for row in rows]
        cursor.close()
        done = True
    finally:
        if cursor is not None and not done:
            _forget_unread_rows(cursor)
        with contextlib.suppress(DatabaseError):
            connection.close()


def _forget_unread_rows(cursor):
    """Stop PyMySQL from reading the rest of an abandoned result (on close or when collected).

    Closing the connection drops the rows instead, and the server stops the
    query when the socket closes.  PyMySQL has no public way to say so.
    """
    result = getattr(cursor, "_result", None)
    if result is not None and hasattr(result, "unbuffered_active"):
        result.unbuffered_active = False
    cursor.connection = None


def _row_chunks(queryset, paths, alias, raw_positions=frozenset()):
    """Lists of up to CHUNK_SIZE ``values_list(*paths)`` rows, converted as Django converts them.

    Values at ``raw_positions`` keep the driver's value: the caller renders
    them from that directly (see ``_Plan.raw_positions``).
    """
    compiler = queryset.values_list(*paths).query.get_compiler(using=alias)
    connection = connections[alias]
    if connection.vendor == "mysql" and not connection.in_atomic_block:
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return
        if not sql:
            return
        width = compiler.col_count if compiler.has_extra_select else None
        source = _server_side_chunks(alias, sql, params, width)
    else:
        source = compiler.execute_sql(MULTI, chunked_fetch=True, chunk_size=CHUNK_SIZE)
    try:
        if raw_positions:
            fields = [selected[0] for selected in compiler.select[: compiler.col_count]]
            converters = {
                position: pair
                for position, pair in compiler.get_converters(fields).items()
                if position not in raw_positions
            }
            rows = chain.from_iterable(source)
            if converters:
                rows = compiler.apply_converters(rows, converters)
        else:
            rows = compiler.results_iter(results=source)
        while chunk := list(islice(rows, CHUNK_SIZE)):
            yield chunk
    finally:
        if hasattr(source, "close"):
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
    text_typed: bool = False  # text people typed: CSV/TSV cells get the formula guard
    value_field: models.Field | None = None  # the model field the value comes from
    index: int = 0  # position of ``path`` in the row


class _Plan:
    """The columns of one export and the query that feeds them."""

    def __init__(self, resource, queryset, selected_fields):
        self.resource, self.queryset, self.alias = resource, queryset, resource.using
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
        """Where each path lands in a row: values_list puts annotations after fields."""
        query = self.queryset.values_list(*self.paths).query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        self.pk_index = names.index("pk") if "pk" in self.paths else None
        for column in self.columns:
            if column.source == VALUE:
                column.index = names.index(column.path)

    # -- classifying fields ------------------------------------------------------

    def _column(self, field):
        """A VALUE column when a row can hold the field's value, else M2M or INSTANCE."""
        if _needs_instance(self.resource, field) or not field.attribute:
            return _Column(field, INSTANCE)
        attribute = field.attribute
        annotation = self.queryset.query.annotations.get(attribute)
        if annotation is not None:
            try:
                output = annotation.output_field
            except Exception:
                return _Column(field, INSTANCE)
            return _Column(field, VALUE, path=attribute, text_typed=isinstance(output, TEXT_FIELDS))
        resolved = _resolve(self.model, attribute)
        if resolved is None:
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

    def rendered(self, mode):
        """Yield (rows, count) per chunk: rows of cells in export order, ready for a writer."""
        env = _Env(self.alias)
        raw = self.raw_positions(mode)
        renderers = [self._renderer(column, mode, env, column.index in raw) for column in self.columns]
        queryset = self.queryset if self._limit is None else self.queryset[: self._limit]
        chunks = _row_chunks(queryset, self.paths, self.alias, raw)
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
                related = self._m2m(column, pks)
                values = (related.get(pk, "") for pk in pks)
            else:
                values = (instances.get(pk) for pk in pks)
            cells.append(values if render is None else map(render, values))
        if not cells:
            return [()] * len(rows)
        return zip(*cells, strict=True)

    def raw_positions(self, mode):
        """Row positions rendered straight from PyMySQL's values, skipping Django's converters.

        On MySQL, Django's converters only make datetimes aware and wrap
        UUID strings, and the renderers undo both (local time, text): a third
        of the time per row for the Customer table.  A position qualifies when
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
            return _guard(mode, column.text_typed)
        export_field = self.resource.export_field
        field = column.field
        if mode == NATIVE:
            return lambda obj: "" if obj is None else _cell(export_field(field, obj, force_native_type=True), env)
        guard = _guard(mode, text_typed=True)
        if guard is None:
            return lambda obj: "" if obj is None else export_field(field, obj)
        return lambda obj: "" if obj is None else guard(export_field(field, obj))

    # -- per-chunk queries -------------------------------------------------------

    def _instances(self, pks):
        """pk -> instance for a chunk, from the export's own queryset (annotations, select_related)."""
        base = self.queryset.all()
        base.query.clear_limits()
        base.query.clear_ordering(force=True)
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


# Cell renderers --------------------------------------------------------------------


class _Env:
    """What rendering depends on, read once per export when its rows start."""

    def __init__(self, alias):
        self.tz = timezone.get_current_timezone() if settings.USE_TZ else None
        self.db_tz = connections[alias].timezone
        # import-export renders numbers with number_format (locale, thousand separators).
        self.plain_numbers = number_format(-1234567) == "-1234567" and number_format(Decimal("-1234.50")) == "-1234.50"


def _guard(mode, text_typed):
    """The formula guard a column needs in ``mode``, or None."""
    if mode == NATIVE:
        return _cell_text
    if mode == CSV and text_typed:
        return escape_formula
    return None


def _value_renderer(column, mode, env):
    """value -> cell, matching the widget's render() (TEXT/CSV) or render(force_native_type=True)."""
    widget, kind = column.field.widget, column.render
    value_field = column.value_field
    if kind == "number":
        if isinstance(value_field, models.IntegerField) and env.plain_numbers:
            kind = "int"
        elif isinstance(value_field, models.DecimalField) and env.plain_numbers:
            kind = "decimal"
        else:
            kind = "generic"
    if mode == NATIVE:
        if kind in ("int", "decimal", "bool", "date", "fk_id"):
            return None
        if kind == "datetime":
            return _native_datetime(env.tz)
        if kind == "str":
            return _cell_text
        if kind == "raw":
            return lambda value: _cell(value, env)
        return lambda value: _cell(widget.render(value, force_native_type=True), env)
    escape = mode == CSV and column.text_typed
    if kind == "str":
        return _text_escaped if escape else _text
    if kind == "raw":
        return _raw_escaped if escape else _raw
    if kind == "int":
        return None if mode == CSV else _int_text  # the csv module writes ints and None as import-export does
    if kind == "decimal":
        return _decimal_text
    if kind == "bool":
        return _bool_text
    if kind == "date":
        return _date_text(widget.formats[0], isinstance(value_field, models.DateTimeField))
    if kind == "datetime":
        return _datetime_text(widget.formats[0], env.tz)
    if kind == "fk_id":
        return _fk_id_text
    if escape:
        return lambda value: escape_formula(widget.render(value))
    return widget.render


def _renders_raw(column, mode):
    """Whether ``_raw_mysql_renderer`` covers the column: stock datetime rendering, or a UUID as text."""
    if column.render == "datetime":
        return isinstance(column.value_field, models.DateTimeField)
    return column.render == "str" and isinstance(column.value_field, models.UUIDField)


def _raw_mysql_renderer(column, mode, env):
    """Render PyMySQL's own values: naive datetimes in the connection's zone, UUIDs as stored text."""
    if column.render == "str":
        return _uuid_cell if mode == NATIVE else _uuid_text
    if env.tz is None:  # USE_TZ = False: Django has no converter here anyway
        return _value_renderer(column, mode, env)
    db_tz, tz = env.db_tz, env.tz
    same = str(db_tz) == str(tz)
    if mode == NATIVE:
        if same:
            return None
        return lambda value: None if value is None else value.replace(tzinfo=db_tz).astimezone(tz).replace(tzinfo=None)
    fmt = column.field.widget.formats[0]
    if fmt == "%Y-%m-%d %H:%M:%S" and same:
        return lambda value: value.isoformat(" ", "seconds") if value else ""
    aware = _datetime_text(fmt, tz)
    return lambda value: aware(value.replace(tzinfo=db_tz)) if value else ""


def _uuid_text(value):
    """str(uuid.UUID(value)) for MySQL's stored forms: 32 hex digits (char(32)) or MariaDB's native uuid."""
    if value is None:
        return ""
    if len(value) == 32:
        value = f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return value.lower()


def _uuid_cell(value):
    return None if value is None else _uuid_text(value)


def _text(value):
    if value is None:
        return ""
    return value if type(value) is str else str(value)


def _text_escaped(value):
    if value is None:
        return ""
    if type(value) is not str:
        value = str(value)
    return "'" + value if value[:1] in FORMULA_START else value


def _raw(value):
    """ForeignKeyWidget renders the related attribute as it is."""
    return "" if value is None else value


def _raw_escaped(value):
    return "" if value is None else escape_formula(value)


def _int_text(value):
    return "" if value is None else str(value)


def _decimal_text(value):
    return "" if value is None else format(value, "f")


def _bool_text(value):
    if type(value) is not bool:
        return ""
    return "1" if value else "0"


def _fk_id_text(value):
    return value or ""


def _date_text(fmt, from_datetime):
    if fmt == "%Y-%m-%d" and not from_datetime:
        return lambda value: value.isoformat() if value else ""
    fmt = sanitize_strftime_format(fmt)
    return lambda value: value.strftime(fmt) if value else ""


def _datetime_text(fmt, tz):
    """DateTimeWidget.render: local time, formatted; the default format without strftime (a third of the cost)."""
    if fmt != "%Y-%m-%d %H:%M:%S":
        fmt = sanitize_strftime_format(fmt)
        if tz is None:
            return lambda value: value.strftime(fmt) if value else ""
        return lambda value: timezone.localtime(value, tz).strftime(fmt) if value else ""
    if tz is None:
        return lambda value: value.isoformat(" ", "seconds")[:19] if value else ""

    def render(value):
        if not value:
            return ""
        if value.tzinfo is None:
            timezone.localtime(value, tz)  # raises ValueError, as the widget does
        return value.astimezone(tz).replace(tzinfo=None).isoformat(" ", "seconds")

    return render


def _native_datetime(tz):
    """Excel has no time zones: local wall time, naive (what import-export writes)."""

    def render(value):
        if value is None or value.tzinfo is None:
            return value
        if tz is not None:
            value = value.astimezone(tz)
        return value.replace(tzinfo=None)

    return render


def _cell_text(value):
    """An XLSX text cell: formula-guarded; control characters a workbook cannot hold become U+FFFD.

    (openpyxl refuses them and the write-only sheet is lost; import-export
    replaces them the same way under IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT.)
    """
    if value is None:
        return None
    if type(value) is not str:
        value = str(value)
    if ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", value)
    return "'" + value if value[:1] in FORMULA_START else value


_NATIVE_TYPES = (int, float, Decimal, datetime.date, datetime.time, datetime.timedelta)


def _cell(value, env):
    """A value openpyxl can write: typed values as they are, strings guarded, anything else as text."""
    if value is None or type(value) is bool:
        return value
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return _native_datetime(env.tz)(value)
    if isinstance(value, _NATIVE_TYPES):
        return value
    return _cell_text(value)
