"""Validating and writing many new rows: what an import of new rows spends its time on.

``NewRows`` prepares a chunk of a file of new rows (no key column) a column
at a time, in the resource's ``before_import``: each cell through its widget
(once per distinct value where the widget depends on the cell alone), each
row built by the model's own constructor, then every plain model field
through Django's validation a column at a time (``FieldCleaner.clean_column``):
a text column whose validators all pass is accepted in one pass
(``str_acceptor``), and other fields' clean is remembered per distinct value,
so a country or status column is validated a handful of times, not once per
row.  ``create_rows`` writes the valid rows with ``QuerySet.bulk_create``, so
the database holds exactly what Django would store.
"""

import functools
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from django.core import validators
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.fields import NOT_PROVIDED
from import_export import widgets

#: Distinct values remembered per field; a column with more (names, emails) is cleaned row by row.
MEMO_SIZE = 512

#: Widgets whose ``clean`` depends on the cell alone and returns an immutable value.
PURE_WIDGETS = (
    widgets.CharWidget,
    widgets.IntegerWidget,
    widgets.FloatWidget,
    widgets.DecimalWidget,
    widgets.BooleanWidget,
    widgets.DateWidget,
    widgets.DateTimeWidget,
    widgets.TimeWidget,
    widgets.DurationWidget,
)


def create_rows(model, instances, using, batch_size=None):
    """Insert new instances on ``using`` with ``bulk_create``; their pks are set where the database returns them."""
    return model._base_manager.db_manager(using).bulk_create(instances, batch_size=batch_size)


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


class CellError:
    """A cell its widget refused: a ValueError is the cell's problem, anything else stops the row."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


@dataclass
class NewRow:
    """One prepared row of a file: an instance ready to save, or why it cannot be saved."""

    instance: models.Model | None = None
    #: The row's field errors (an invalid row).
    error: ValidationError | None = None
    #: What stopped the row (an error row).
    failure: Exception | None = None
    skip: set = dataclass_field(default_factory=set)


class NewRows:
    """The rows of a file of new rows, prepared a chunk at a time for one resource and one file.

    ``fields`` are the resource's plain fields the file carries (not M2M, not
    read-only); ``not_in_file`` the names of the model fields it does not
    carry, which keep their defaults and are not validated again.
    """

    def __init__(self, resource, fields, not_in_file, kwargs):
        model = resource._meta.model
        opts = model._meta
        self.resource = resource
        self.names = field_names(model)
        self.cells = [
            (f, self.names.get(f.attribute, f.attribute), column_cleaner(f, kwargs, resource.pure_widgets))
            for f in fields
        ]
        self.attributes = [f.attribute for f in fields]
        self.saves_nulls = all(f.saves_null_values for f in fields)
        self.cleaner = FieldCleaner(model)
        self.not_in_file = not_in_file
        self.model_fields = opts.fields
        carried = [f for f in opts.fields if f.name not in not_in_file and not f.generated]
        self.column_fields = [f for f in carried if not f.is_relation]
        self.column_names = {f.name for f in self.column_fields}
        self.relation_names = {f.name for f in carried if f.is_relation}

    def prepare(self, dataset, conflicts, kwargs):
        """``{row number: NewRow}`` for a chunk (row numbers from 1, as the import loop counts them).

        ``conflicts`` maps a row number to ``{attribute: message}`` for its unique values taken elsewhere.
        """
        headers = dataset.headers or []
        rows = [dict(zip(headers, data_row, strict=False)) for data_row in dataset]
        n = len(rows)
        cell_errors = [{} for _ in range(n)]  # field name -> ValidationError, in column order
        failures = {}  # row index -> the exception that stopped the row
        columns = [clean([row[field.column_name] for row in rows], rows) for field, _, clean in self.cells]
        for (_, name, _), column in zip(self.cells, columns, strict=True):
            for i in [i for i, value in enumerate(column) if type(value) is CellError]:
                error = column[i].error
                if isinstance(error, ValueError):
                    cell_errors[i][name] = ValidationError(str(error), code="invalid")
                else:
                    failures.setdefault(i, error)
        # What the package sets on the instance: each clean cell, None only where the field saves nulls.
        if columns:
            values = [dict(zip(self.attributes, cells, strict=True)) for cells in zip(*columns, strict=True)]
        else:
            values = [{} for _ in range(n)]
        if not self.saves_nulls or any(cell_errors):
            for i, row_values in enumerate(values):
                for (field, name, _), column in zip(self.cells, columns, strict=True):
                    value = column[i]
                    if name in cell_errors[i] or (value is None and not field.saves_null_values):
                        row_values.pop(field.attribute, None)
        prepared = {}
        for i, row in enumerate(rows):
            if i in failures:
                continue
            try:
                instance = self.resource.new_instance(values[i])
                cell_errors[i].update(self.resource.clean_m2m(instance, row, **kwargs))
            except Exception as e:
                failures[i] = e
                continue
            for attribute, message in conflicts.get(i + 1, {}).items():
                name = self.names.get(attribute, attribute)
                cell_errors[i].setdefault(name, ValidationError(message, code="unique"))
            prepared[i] = NewRow(instance, skip=set(cell_errors[i]) | self.not_in_file)
        instances = [prepared[i].instance if i in prepared else None for i in range(n)]
        field_errors = self.clean_columns(instances, [prepared[i].skip if i in prepared else () for i in range(n)])
        for i, row in prepared.items():
            try:
                invalid = self.finish_clean(row.instance, row.skip, field_errors.get(i))
            except Exception as e:
                failures[i] = e
                continue
            errors = cell_errors[i]
            if invalid is not None:
                errors = invalid.update_error_dict(errors)
            if errors:
                row.error = ValidationError(errors)
        for i, failure in failures.items():
            prepared[i] = NewRow(failure=failure)
        return {i + 1: prepared[i] for i in range(n)}

    def clean_columns(self, instances, skip):
        """``clean_fields`` of the plain fields over the chunk, a field at a time: ``{index: {name: errors}}``."""
        errors = defaultdict(dict)
        if self.cleaner.custom:  # the model's own full_clean runs per row in finish_clean
            return errors
        for field in self.column_fields:
            for i, messages in self.cleaner.clean_column(field, instances, skip).items():
                errors[i][field.name] = messages
        return errors

    def finish_clean(self, instance, exclude, found):
        """The rest of ``full_clean(exclude)`` for one row: its errors as a ValidationError, or None."""
        if self.cleaner.custom:
            try:
                instance.full_clean(exclude=exclude, validate_unique=False)
            except ValidationError as e:
                return e
            return None
        found = found or {}
        if self.relation_names - exclude:  # relations: one instance at a time
            found.update(self.cleaner.clean_fields(instance, exclude | self.column_names))
        if len(found) > 1:  # in the model's field order, as clean_fields reports them
            found = {f.name: found[f.name] for f in self.model_fields if f.name in found}
        errors = self.cleaner.clean_model(instance, exclude, found)
        return ValidationError(errors) if errors else None


def column_cleaner(field, kwargs, pure_widgets=PURE_WIDGETS):
    """``(cells, rows) -> values``: ``field.clean(row)`` of each row, a CellError where it raised.

    A pure widget (its ``clean`` depends on the cell alone) is mapped over
    the column in one pass, remembered per distinct cell; only a column in
    which a cell raises is cleaned again a cell at a time, for its errors.
    """

    def clean_row(cell, row):
        try:
            return clean_cell(field, row, **kwargs)
        except Exception as e:
            return CellError(e)

    made = field.default is not NOT_PROVIDED and callable(field.default)  # a fresh default per empty cell
    if made or type(field.widget) not in pure_widgets:
        return lambda cells, rows: list(map(clean_row, cells, rows))
    column, widget_clean, default, empty = field.column_name, field.widget.clean, field.default, field.empty_values
    memo = {}

    def remembered(cell):
        key = (type(cell), cell)
        try:
            return memo[key]
        except KeyError:
            value = memo[key] = widget_clean(cell)
            if len(memo) > MEMO_SIZE:  # a column of distinct values (names, emails): stop remembering
                memo.clear()
                nonlocal cell_clean
                cell_clean = widget_clean
            return value

    cell_clean = remembered

    def clean(cells, rows):
        try:
            values = list(map(cell_clean, cells))
        except Exception:
            return [clean_row(cell, {column: cell}) for cell in cells]
        if default is NOT_PROVIDED:
            return values
        return [default if value in empty else value for value in values]  # what Field.clean does

    return clean


def clean_cell(field, row, **kwargs):
    """``field.clean(row)``; a widget's ArithmeticError or TypeError ("abc" in a number column) as a ValueError."""
    try:
        return field.clean(row, **kwargs)
    except (ArithmeticError, TypeError) as exc:
        raise ValueError(widget_message(field, exc)) from None


def widget_message(field, exc):
    """The message for a cell a widget could not read."""
    numeric = isinstance(field.widget, (widgets.DecimalWidget, widgets.IntegerWidget, widgets.FloatWidget))
    return "Enter a number." if numeric else f"Not a valid value ({type(exc).__name__})."
