"""Validating and inserting many new rows: what an import spends its time on.

``instance_factory`` builds new instances without ``Model.__init__``'s
per-field walk when nothing listens to the init signals.  ``FieldCleaner``
runs ``Model.clean_fields`` with the result of each plain field's clean
remembered per distinct value, so a country or status column is validated
a handful of times, not once per row.  ``insert_rows`` writes
new instances in multi-row INSERTs the way ``QuerySet.bulk_create`` does for
a plain model, without compiling an expression per value.
"""

from operator import attrgetter

from django.core.exceptions import ValidationError
from django.db import connections, models
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone

#: Distinct values remembered per field; a column with more (names, emails) is cleaned row by row.
MEMO_SIZE = 512

_MISSING = object()

#: Field classes whose database value is the Python string itself.
_TEXT_FIELDS = (models.CharField, models.TextField, models.EmailField, models.SlugField, models.URLField)


def _memoizable(field):
    """Django's own scalar fields (not files, JSON or relations): their clean depends on the value alone."""
    return not field.is_relation and type(field).__module__ == "django.db.models.fields"


class FieldCleaner:
    """``Model.full_clean(validate_unique=False)`` for many instances of one model, memoized per value."""

    def __init__(self, model):
        self.model = model
        base = models.Model
        #: A model that customises field cleaning keeps its own full_clean.
        self.custom = model.full_clean is not base.full_clean or model.clean_fields is not base.clean_fields
        self.memo = {f.attname: {} for f in model._meta.concrete_fields if _memoizable(f)}
        self.has_constraints = bool(model._meta.constraints)
        self._fields_for = {}

    def full_clean(self, instance, exclude):
        if self.custom:
            instance.full_clean(exclude=exclude, validate_unique=False)
            return
        errors = self.clean_fields(instance, exclude)
        try:
            instance.clean()
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        if self.has_constraints:
            try:
                instance.validate_constraints(exclude=set(exclude) | set(errors))
            except ValidationError as e:
                errors = e.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def clean_fields(self, instance, exclude):
        """What ``Model.clean_fields`` does; the same errors, keyed by field name."""
        errors = {}
        fields = self._fields_for.get(frozenset(exclude))
        if fields is None:  # the same few exclude sets recur on every row of an import
            fields = [f for f in self.model._meta.fields if f.name not in exclude and not f.generated]
            if len(self._fields_for) < 64:
                self._fields_for[frozenset(exclude)] = fields
        for field in fields:
            raw = getattr(instance, field.attname)
            if field.blank and raw in field.empty_values:
                continue
            memo = self.memo.get(field.attname)
            key = (type(raw), raw)
            try:
                cached = memo.get(key) if memo is not None else None
            except TypeError:  # not hashable
                cached = None
            if cached is None:
                try:
                    cached = (True, field.clean(raw, instance))
                except ValidationError as e:
                    cached = (False, e.error_list)
                if memo is not None and len(memo) < MEMO_SIZE:
                    try:
                        memo[key] = cached
                    except TypeError:
                        pass
            ok, value = cached
            if ok:
                setattr(instance, field.attname, value)
            else:
                errors[field.name] = list(value)
        return errors


def instance_factory(model):
    """A function ``make(values) -> instance``: ``model(**values)``, faster for a plain model.

    Every concrete field starts at its default (callable defaults called per
    instance, as ``Model.__init__`` does); ``values`` are set by name, related
    objects and properties through their descriptors.  A model with its own
    ``__init__`` or init signal receivers gets ``model(**values)`` itself.
    """
    if model.__init__ is not models.Model.__init__ or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return lambda values: model(**values)
    fields = model._meta.concrete_fields
    # A fresh value per instance: callable defaults, and db_default expressions (when no default).
    # (NOT_PROVIDED is a class: callable(f.default) alone is true for a field without a default.)
    per_instance = [
        f for f in fields if (f.has_default() and callable(f.default)) or (f.has_db_default() and not f.has_default())
    ]
    shared = {f.attname: f.get_default() for f in fields if f not in per_instance}
    plain = {f.name for f in fields if not f.is_relation and f.name == f.attname}

    def make(values):
        obj = model.__new__(model)
        attributes = obj.__dict__
        attributes.update(shared)
        for f in per_instance:
            attributes[f.attname] = f.get_default()
        obj._state = ModelState()
        for name, value in values.items():
            if name in plain:
                attributes[name] = value
            else:
                setattr(obj, name, value)
        return obj

    return make


def insert_rows(model, instances, using, *, need_pks=True):
    """INSERT new rows in multi-row statements, reading their pks back where the database can.

    What ``QuerySet.bulk_create`` does for a plain model, without compiling an
    expression per value.  ``auto_now``/``auto_now_add`` fields get one
    timestamp per statement (as a database default would); rows with a
    database expression (``db_default`` with no value) go through
    ``bulk_create``.  With ``need_pks=False`` the new pks are not read back
    (instances keep ``pk = None``): for large imports nothing needs them.
    """
    connection = connections[using]
    opts = model._meta
    pk = opts.pk
    auto_pk = pk.auto_created or isinstance(pk, models.AutoField)
    plain = [obj for obj in instances if not any(hasattr(v, "resolve_expression") for v in vars(obj).values())]
    if len(plain) != len(instances):
        model._default_manager.using(using).bulk_create([o for o in instances if o not in plain])
    for group in (
        [o for o in plain if o.pk is None and auto_pk],
        [o for o in plain if not (o.pk is None and auto_pk)],
    ):
        if not group:
            continue
        fields = [f for f in opts.local_concrete_fields if not (f is pk and group[0].pk is None)]
        returning = need_pks and group[0].pk is None and connection.features.can_return_rows_from_bulk_insert
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        size = max(1, connection.ops.bulk_batch_size(fields, group))
        stamped = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
        columns_out = [(_value_getter(f, stamped), _db_converter(f, connection)) for f in fields]
        with connection.cursor() as cursor:
            for start in range(0, len(group), size):
                batch = group[start : start + size]
                now = timezone.now()
                for obj in batch:
                    for f in stamped:
                        setattr(obj, f.attname, now)
                params = [convert(get(obj)) for obj in batch for get, convert in columns_out]
                sql = f"INSERT INTO {connection.ops.quote_name(opts.db_table)} ({columns}) VALUES "
                sql += ", ".join([one_row] * len(batch))
                if returning:
                    sql += f" RETURNING {connection.ops.quote_name(pk.column)}"
                cursor.execute(sql, params)
                if returning:
                    for obj, (value,) in zip(batch, cursor.fetchall(), strict=True):
                        obj.pk = value
        for obj in group:
            obj._state.adding, obj._state.db = False, using


def _value_getter(field, stamped):
    """The value to save: ``pre_save``'s, read straight off the instance where ``pre_save`` does only that."""
    if field in stamped or type(field).pre_save is models.Field.pre_save:
        return attrgetter(field.attname)
    return lambda obj: field.pre_save(obj, True)


def _db_converter(field, connection):
    """``field.get_db_prep_save`` bound to the connection, remembered per value.

    Text already a str (or None) passes as is; other values (dates, decimals,
    choices stored as numbers) are converted once per distinct value.
    """
    if type(field) in _TEXT_FIELDS:

        def convert_text(value):
            return value if value is None or type(value) is str else field.get_db_prep_save(value, connection)

        return convert_text
    seen = {}

    def convert(value):
        key = (type(value), value)
        try:
            converted = seen.get(key, _MISSING)
        except TypeError:  # unhashable
            return field.get_db_prep_save(value, connection)
        if converted is _MISSING:
            converted = field.get_db_prep_save(value, connection)
            if len(seen) < MEMO_SIZE:
                seen[key] = converted
        return converted

    return convert
