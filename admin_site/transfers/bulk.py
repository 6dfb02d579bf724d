"""Validating and inserting many new rows: what an import spends its time on.

``instance_factory`` builds new instances without ``Model.__init__``'s
per-field walk when nothing listens to the init signals.  ``FieldCleaner``
runs ``Model.clean_fields`` for one instance, or for one field over many
(``clean_column``): a text column whose validators all pass is accepted in
one pass (``str_acceptor``), and other fields' clean is remembered per
distinct value, so a country or status column is validated a handful of
times, not once per row.  ``insert_rows`` writes new instances in multi-row
INSERTs the way ``QuerySet.bulk_create`` does for a plain model, without
compiling an expression per value.
"""

import functools
from operator import attrgetter

from django.core import validators
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
_STR_OR_NONE = {str, type(None)}


@functools.cache
def field_names(model):
    """attname -> name of the model's fields: widgets report FKs by attname ("customer_id"), errors use names."""
    return {f.attname: f.name for f in model._meta.concrete_fields}


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
        self.accept = {f.attname: accept for f in model._meta.concrete_fields if (accept := str_acceptor(f))}
        self.has_clean = model.clean is not base.clean
        #: ``Model.get_constraints`` also checks the parents' (a proxy declares none of its own).
        self.has_constraints = any(m._meta.constraints for m in (model, *model._meta.all_parents))
        self._fields_for = {}

    def full_clean(self, instance, exclude):
        if self.custom:
            instance.full_clean(exclude=exclude, validate_unique=False)
            return
        errors = self.clean_model(instance, exclude, self.clean_fields(instance, exclude))
        if errors:
            raise ValidationError(errors)

    def clean_model(self, instance, exclude, errors):
        """The rest of ``full_clean`` once the fields are clean: ``clean()``, then the constraints."""
        if self.has_clean:
            try:
                instance.clean()
            except ValidationError as e:
                errors = e.update_error_dict(errors)
        if self.has_constraints:
            try:
                instance.validate_constraints(exclude=set(exclude) | set(errors))
            except ValidationError as e:
                errors = e.update_error_dict(errors)
        return errors

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
            ok, value = self._clean(field, raw, instance)
            if ok:
                setattr(instance, field.attname, value)
            else:
                errors[field.name] = value
        return errors

    def clean_column(self, field, instances, skip):
        """``clean_fields`` of one plain field over many instances: ``{index: errors}``.

        ``instances[i]`` is None, or ``field.name in skip[i]``, for rows not to clean.
        """
        attname, name, blank, empty = field.attname, field.name, field.blank, field.empty_values
        rows = [i for i, instance in enumerate(instances) if instance is not None and name not in skip[i]]
        raws = [instances[i].__dict__[attname] for i in rows]  # a plain field's value lives there
        accept = self.accept.get(attname)
        if accept is not None and accept(raws):
            return {}  # field.clean would return every value unchanged
        errors = {}
        for i, raw in zip(rows, raws, strict=True):
            if blank and raw in empty:
                continue
            ok, value = self._clean(field, raw, instances[i])
            if ok:
                instances[i].__dict__[attname] = value
            else:
                errors[i] = value
        return errors

    def _clean(self, field, raw, instance):
        """``(True, field.clean(raw))`` or ``(False, its errors)``, remembered per value where that is sound."""
        if (accept := self.accept.get(field.attname)) and type(raw) is str and accept((raw,)):
            return True, raw  # field.clean would return raw unchanged
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
        return ok, value if ok else list(value)


def str_acceptor(field):
    """A quick test that ``field.clean`` takes every str of a list unchanged, or None where none is sound.

    For Django's text fields without choices, ``clean`` of a str returns the
    str itself, or raises when it is blank and must not be, or when a
    validator refuses it.  The test runs each validator over the whole list
    at once, with C-level primitives where it can (the longest value against
    a length limit, a regex's ``search`` mapped over the list); any other
    validator is called per value.  A list the test does not accept goes
    through ``field.clean`` value by value, which gives the errors: the test
    only skips work.
    """
    if (
        type(field).clean is not models.Field.clean
        or type(field).validate is not models.Field.validate
        or type(field).to_python not in (models.CharField.to_python, models.TextField.to_python)
        or field.choices is not None
    ):
        return None
    checks = [_str_check(v) for v in field.validators]
    blank = field.blank

    def accept(values):
        if not values:
            return True
        if set(map(type, values)) != {str}:
            return False
        if "" in values:
            if not blank:
                return False
            values = [value for value in values if value]  # Django skips blank values of a blank field
        for check in checks:
            if values and not check(values):
                return False
        return True

    return accept


def _str_check(validator):
    """``validator(value)`` passes for every value of a list of str, as a predicate on the list."""
    kind = type(validator)
    limit = getattr(validator, "limit_value", None)
    if kind is validators.MaxLengthValidator and not callable(limit):
        return lambda values: max(map(len, values)) <= limit
    if kind is validators.MinLengthValidator and not callable(limit):
        return lambda values: min(map(len, values)) >= limit
    if kind is validators.ProhibitNullCharactersValidator:
        return lambda values: not any("\x00" in value for value in values)
    if kind is validators.RegexValidator:
        search = validator.regex.search
        if validator.inverse_match:
            return lambda values: not any(map(search, values))
        return lambda values: all(map(search, values))
    check = _email_check(validator) if kind is validators.EmailValidator else _passes(validator)
    return lambda values: all(map(check, values))


def _passes(validator):
    def passes(value):
        try:
            validator(value)
        except ValidationError:
            return False
        return True

    return passes


def _email_check(validator):
    """``EmailValidator.__call__`` as a predicate: its regexes resolved once, each domain checked once."""
    user_match, allowlist = validator.user_regex.match, validator.domain_allowlist
    domains = {}

    def check(value):
        if not value or "@" not in value or len(value) > 320:
            return False
        user_part, domain_part = value.rsplit("@", 1)
        if not user_match(user_part):
            return False
        if domain_part in allowlist:
            return True
        valid = domains.get(domain_part)
        if valid is None:
            valid = bool(validator.validate_domain_part(domain_part))
            if len(domains) < MEMO_SIZE:
                domains[domain_part] = valid
        return valid

    return check


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
        if values.keys() <= plain:
            attributes.update(values)
            return obj
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
    expression per value.  A proxy's rows go to its concrete model's table; a
    multi-table child is refused (as ``bulk_create`` refuses it: write it row
    by row).  ``auto_now``/``auto_now_add`` fields get one
    timestamp per call (as a database default would per statement); rows with a
    database expression (``db_default`` with no value) go through
    ``bulk_create``.  With ``need_pks=False`` the new pks are not read back
    (instances keep ``pk = None``): for large imports nothing needs them.
    """
    connection = connections[using]
    # A proxy's own options hold no local fields: its rows are the concrete model's.
    opts = model._meta.concrete_model._meta
    if opts.parents:
        raise ValueError(f"insert_rows cannot write {model.__name__}: its rows span its parents' tables.")
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
        columns_out = [(_value_getter(f, stamped), _column_converter(f, connection)) for f in fields]
        sql = f"INSERT INTO {connection.ops.quote_name(opts.db_table)} ({columns}) VALUES "
        # Without pks to read back, one executemany: PyMySQL sends it as multi-row INSERTs of up to
        # 1 MB each (under the server's packet limit however long the rows), sqlite3 as one prepared
        # statement.  Reading pks back needs INSERT ... RETURNING, one statement per batch.
        batches = [group[i : i + size] for i in range(0, len(group), size)] if returning else [group]
        with connection.cursor() as cursor:
            for batch in batches:
                now = timezone.now()
                for obj in batch:
                    for f in stamped:
                        setattr(obj, f.attname, now)
                # A column at a time: map() over the batch, then rows by zip(), without a call per cell.
                rows = list(zip(*[convert(list(map(get, batch))) for get, convert in columns_out], strict=True))
                if not returning:
                    cursor.executemany(sql + one_row, rows)
                    continue
                cursor.execute(
                    sql + ", ".join([one_row] * len(batch)) + f" RETURNING {connection.ops.quote_name(pk.column)}",
                    [value for row in rows for value in row],
                )
                for obj, (value,) in zip(batch, cursor.fetchall(), strict=True):
                    obj.pk = value
        for obj in group:
            obj._state.adding, obj._state.db = False, using


def _value_getter(field, stamped):
    """The value to save: ``pre_save``'s, read straight off the instance where ``pre_save`` does only that."""
    if field in stamped or type(field).pre_save is models.Field.pre_save:
        return attrgetter(field.attname)
    return lambda obj: field.pre_save(obj, True)


def _column_converter(field, connection):
    """``field.get_db_prep_save`` bound to the connection, for a column of values.

    A text column of str (or None) passes as is; other values (dates,
    decimals, choices stored as numbers) are converted once per distinct value.
    """
    prep = field.get_db_prep_save
    if type(field) in _TEXT_FIELDS:

        def convert_text(values):
            if set(map(type, values)) <= _STR_OR_NONE:
                return values
            return [value if value is None or type(value) is str else prep(value, connection) for value in values]

        return convert_text
    seen = {}

    def convert(value):
        key = (type(value), value)
        try:
            converted = seen.get(key, _MISSING)
        except TypeError:  # unhashable
            return prep(value, connection)
        if converted is _MISSING:
            converted = prep(value, connection)
            if len(seen) < MEMO_SIZE:
                seen[key] = converted
        return converted

    return lambda values: list(map(convert, values))
