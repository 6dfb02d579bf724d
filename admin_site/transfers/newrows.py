"""The import loop for a file of new rows: a chunk of rows at a time, column by column.

A file without a key column only adds rows.  django-import-export's row loop
spends most of such an import on what only existing rows need (instance
loader, diff, a savepoint per batch) and on calls per cell.  Here each chunk
of rows is cleaned a column at a time: every cell through its widget (once
per distinct value where the widget depends on nothing else), then every
plain model field through Django's validation (``FieldCleaner.clean_column``);
then each row is built, gets the model's ``clean()`` and constraints and is
queued for the bulk insert.  The problems, their order and the stored rows
are those of the package's own path (``tests/test_bulk_imports.py``).
"""

from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db.models.fields import NOT_PROVIDED
from import_export import exceptions, widgets
from import_export.results import RowResult
from import_export.utils import atomic_if_using_transaction

from admin_site.transfers.bulk import MEMO_SIZE, field_names

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


class NewRowsMixin:
    """``import_new_rows`` for a ModelResource that has prepared the file in ``before_import``.

    It reads what ``DatabaseModelResource.before_import`` works out once per
    file: ``_plain_file_fields``, ``_m2m_file_fields``, ``_not_in_file``,
    ``_unique_conflicts``, ``_cleaner`` and ``_make_instance``.
    """

    #: Widget classes of ``PURE_WIDGETS`` kind that a subclass adds.
    pure_widgets = PURE_WIDGETS
    #: An invalid row rolls the import back (``import_data(rollback_on_validation_errors=True)``).
    all_or_nothing = True

    def import_new_rows(self, dataset, dry_run, raise_errors, using_transactions, **kwargs):
        """The package's ``import_data_inner`` for a file of new rows; a header problem stops before any row."""
        result = self.get_result_class()()
        result.diff_headers = self.get_diff_headers()
        result.total_rows = total = len(dataset)
        try:
            with atomic_if_using_transaction(using_transactions, using=self.get_db_connection_name()):
                self.before_import(dataset, **kwargs)
        except Exception as e:
            self.handle_import_error(result, e, raise_errors)
            return result
        # Per import, not flipped on the class as the package's import_row does.
        store = self._meta.store_instance or kwargs.get("retain_instance_in_row_result", False)
        kwargs.update(dry_run=dry_run, using_transactions=using_transactions)
        plan = _Plan(self, kwargs)
        headers, size, chunk = dataset.headers, self._meta.batch_size or 1000, []
        for number, data_row in enumerate(dataset, 1):
            chunk.append((number, dict(zip(headers, data_row, strict=False))))
            if len(chunk) < size and number < total:
                continue
            for row_number, row, row_result in self._import_chunk(plan, chunk, store, kwargs):
                self._add_row_result(result, row_number, row, row_result, raise_errors)
            # Once the import is bound to roll back, writing more is wasted.  No savepoint per batch
            # (the package makes one): on MariaDB a savepoint costs more the more FULLTEXT-indexed rows
            # the transaction holds, and any error rolls the whole import back anyway.
            failed = result.base_errors or result.error_rows  # (has_errors() walks every row so far)
            if not (failed or (result.invalid_rows and self.all_or_nothing)):
                self.bulk_create(using_transactions, dry_run, raise_errors, result=result)
            self.create_instances.clear()
            chunk = []
        try:
            with atomic_if_using_transaction(using_transactions, using=self.get_db_connection_name()):
                self.after_import(dataset, result, **kwargs)
        except Exception as e:
            self.handle_import_error(result, e, raise_errors)
        return result

    def _import_chunk(self, plan, chunk, store, kwargs):
        """Yield ``(number, row, RowResult)`` for each row of ``chunk``; queue the valid ones."""
        n, rows = len(chunk), [row for _, row in chunk]
        cell_errors = [{} for _ in range(n)]  # field name -> ValidationError, in column order
        failures = {}  # row index -> the exception that stopped the row (an "error" row)
        columns = [clean([row[field.column_name] for row in rows], rows) for field, _, clean in plan.cells]
        for (_, name, _), column in zip(plan.cells, columns, strict=True):
            for i in [i for i, value in enumerate(column) if type(value) is CellError]:
                error = column[i].error
                if isinstance(error, ValueError):
                    cell_errors[i][name] = ValidationError(str(error), code="invalid")
                else:
                    failures.setdefault(i, error)
        # What the package sets on the instance: each clean cell, None only where the field saves nulls.
        if columns:
            values = [dict(zip(plan.attributes, cells, strict=True)) for cells in zip(*columns, strict=True)]
        else:
            values = [{} for _ in range(n)]
        if not plan.saves_nulls or any(cell_errors):
            for i, row_values in enumerate(values):
                for (field, name, _), column in zip(plan.cells, columns, strict=True):
                    value = column[i]
                    if name in cell_errors[i] or (value is None and not field.saves_null_values):
                        row_values.pop(field.attribute, None)
        instances, skip = [None] * n, [()] * n
        for i, (number, row) in enumerate(chunk):
            if i in failures:
                continue
            try:
                instance = self._make_instance(values[i])
                instance._state.db = self.using
                cell_errors[i].update(self.clean_m2m(instance, row, **kwargs))
            except Exception as e:
                failures[i] = e
                continue
            instances[i] = instance
            for attribute, message in self._unique_conflicts.get(number, {}).items():
                cell_errors[i].setdefault(plan.names.get(attribute, attribute), ValidationError(message, code="unique"))
            skip[i] = set(cell_errors[i]) | self._not_in_file
        field_errors = plan.clean_columns(instances, skip)
        for i, (number, row) in enumerate(chunk):
            row_result = RowResult()
            row_result.row_values = row
            if i in failures:
                row_result.import_type = RowResult.IMPORT_TYPE_ERROR
                row_result.errors.append(self.get_error_result_class()(failures[i], row=row, number=number))
                yield number, row, row_result
                continue
            instance, errors = instances[i], cell_errors[i]
            row_result.import_type = RowResult.IMPORT_TYPE_NEW
            try:
                invalid = plan.finish_clean(instance, skip[i], field_errors.get(i))
                if invalid is not None:
                    errors = invalid.update_error_dict(errors)
                if errors:
                    raise ValidationError(errors)
                self.save_instance(instance, True, row, **kwargs)
                row_result.object_repr = str(instance)
                if store:
                    row_result.instance = instance
                self.after_import_row(row, row_result, **kwargs)
            except ValidationError as e:
                row_result.import_type = RowResult.IMPORT_TYPE_INVALID
                row_result.validation_error = e
            except Exception as e:
                row_result.import_type = RowResult.IMPORT_TYPE_ERROR
                row_result.errors.append(self.get_error_result_class()(e, row=row, number=number))
            yield number, row, row_result

    def _add_row_result(self, result, number, row, row_result, raise_errors):
        """What the package's loop does with each row's result."""
        result.increment_row_result_total(row_result)
        if row_result.errors:
            result.append_error_row(number, row, row_result.errors)
        elif row_result.validation_error:
            result.append_invalid_row(number, row, row_result.validation_error)
        if raise_errors and (row_result.errors or row_result.validation_error):
            error = row_result.errors[-1].error if row_result.errors else row_result.validation_error
            raise exceptions.ImportError(error, number=number, row=row)
        result.append_row_result(row_result)

    def column_cleaner(self, field, kwargs):
        """``(cells, rows) -> values``: ``field.clean(row)`` of each row, a CellError where it raised.

        A pure widget (its ``clean`` depends on the cell alone) is mapped over
        the column in one pass, remembered per distinct cell; only a column in
        which a cell raises is cleaned again a cell at a time, for its errors.
        """

        def clean_row(cell, row):
            try:
                return _clean_cell(field, row, **kwargs)
            except Exception as e:
                return CellError(e)

        made = field.default is not NOT_PROVIDED and callable(field.default)  # a fresh default per empty cell
        if made or type(field.widget) not in self.pure_widgets:
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


class CellError:
    """A cell its widget refused: a ValueError is the cell's problem, anything else stops the row."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


class _Plan:
    """What one file's import works out once: each column's cleaner, and how the model is validated."""

    def __init__(self, resource, kwargs):
        opts = resource._meta.model._meta
        self.names = field_names(resource._meta.model)
        self.cells = [
            (field, self.names.get(field.attribute, field.attribute), resource.column_cleaner(field, kwargs))
            for field in resource._plain_file_fields
        ]
        self.attributes = [field.attribute for field in resource._plain_file_fields]
        self.saves_nulls = all(field.saves_null_values for field in resource._plain_file_fields)
        self.cleaner = resource._cleaner
        self.fields = opts.fields
        carried = [f for f in opts.fields if f.name not in resource._not_in_file and not f.generated]
        self.column_fields = [f for f in carried if not f.is_relation]
        self.column_names = {f.name for f in self.column_fields}
        self.relation_names = {f.name for f in carried if f.is_relation}

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
            found = {f.name: found[f.name] for f in self.fields if f.name in found}
        errors = self.cleaner.clean_model(instance, exclude, found)
        return ValidationError(errors) if errors else None


def _clean_cell(field, row, **kwargs):
    """``field.clean(row)``; a widget's ArithmeticError or TypeError ("abc" in a number column) as a ValueError."""
    try:
        return field.clean(row, **kwargs)
    except (ArithmeticError, TypeError) as exc:
        raise ValueError(widget_message(field, exc)) from None


def widget_message(field, exc):
    numeric = isinstance(field.widget, (widgets.DecimalWidget, widgets.IntegerWidget, widgets.FloatWidget))
    return "Enter a number." if numeric else f"Not a valid value ({type(exc).__name__})."
