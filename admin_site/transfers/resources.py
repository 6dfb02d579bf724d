"""django-import-export resources bound to one database alias, fast and all-or-nothing.

Stock 4.4 asks the router (or ``model.objects``) for its transaction, row
lookups, saves, bulk writes and FK/M2M widget lookups, so its dry run can
open a transaction on one database while writing to another.
``DatabaseModelResource`` takes ``using`` and binds each of those hooks; the
import and export also run with that alias pinned (``admin_site.pinning``),
which covers model validation inside the package.

Speed: rows are written with ``bulk_create``/``bulk_update``, and the
per-row unique checks of ``full_clean`` (one query per unique field per row)
are replaced by one query per unique field per batch of values, plus a check
for duplicates inside the file.  A file of new rows (no key column) is
cleaned and validated a column at a time in ``before_import``
(``admin_site.transfers.bulk.NewRows``); ``import_row`` then hands each
prepared row to the package's loop.  Many-to-many columns, which stock bulk
mode ignores, are validated per row and written in bulk through the
relation's table.
"""

from collections import defaultdict

from django.core.exceptions import FieldDoesNotExist, MultipleObjectsReturned, ObjectDoesNotExist, ValidationError
from django.db import connections, models, router
from import_export import resources, widgets
from import_export.results import RowResult

from admin_site.pinning import using_database
from admin_site.secrets import secret_field_names
from admin_site.transfers.bulk import (
    PURE_WIDGETS,
    CellError,
    FieldCleaner,
    NewRows,
    column_cleaner,
    create_rows,
    field_names,
    widget_message,
)
from admin_site.transfers.exports.cells import FORMULA_START
from admin_site.transfers.formats import excerpt
from admin_site.transfers.imports import DATABASE_FAILURES, database_failure, problems, run_import

#: Values per ``IN (...)`` query when checking unique columns against the database.
LOOKUP_CHUNK = 2000

#: Hooks the new-rows path stands in for; a subclass overriding one keeps the stock path
#: (``before_import`` may change the file after the path was chosen).
ROW_HOOKS = (
    "before_import",
    "import_row",
    "before_import_row",
    "get_or_init_instance",
    "get_instance",
    "init_instance",
    "after_init_instance",
    "for_delete",
    "import_instance",
    "import_field",
    "skip_row",
    "validate_instance",
    "save_instance",
    "save_m2m",
)


class TextWidget(widgets.CharWidget):
    """Text that takes back the export's formula guard: "'+46 8 555" imports as "+46 8 555".

    Exports prefix a text cell starting with = + - @ tab or CR with an
    apostrophe (see ``admin_site.transfers.exports``), so that a spreadsheet shows it
    as text; importing the file again must give the original value.  In a
    column that holds NULL (``allow_blank=False``) an empty cell is NULL, as
    the export writes NULL: a unique nullable column (a VAT number) would
    otherwise refuse the second empty cell.
    """

    def clean(self, value, row=None, **kwargs):
        if type(value) is str:  # what CharWidget.clean returns for a str, without its calls
            if not value:
                return value if self.allow_blank else None
            return value[1:] if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START else value
        return super().clean(value, row, **kwargs)


class YesNoWidget(widgets.BooleanWidget):
    """A yes/no cell is 1/0, true/false or empty; other text is a field error.

    Stock ``BooleanWidget`` reads any other text ("yes", "x", "maybe") as False,
    which silently clears a flag that the file meant to set.
    """

    def clean(self, value, row=None, **kwargs):
        if value not in (*self.NULL_VALUES, *self.TRUE_VALUES, *self.FALSE_VALUES):
            raise ValueError(f"“{excerpt(str(value), 40)}” is not a yes/no value: use 1 or 0 (or true or false).")
        return super().clean(value, row, **kwargs)


class DatabaseForeignKeyWidget(widgets.ForeignKeyWidget):
    """A missing or ambiguous related row is a field error naming the value and database."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except ObjectDoesNotExist:
            raise ValueError(
                f"No {self.model._meta.verbose_name} with {self.field} = {excerpt(value, 80)!r} in this database."
            ) from None
        except MultipleObjectsReturned:
            raise ValueError(
                f"More than one {self.model._meta.verbose_name} has {self.field} = {excerpt(value, 80)!r}."
            ) from None


class DatabaseManyToManyWidget(widgets.ManyToManyWidget):
    """Related rows looked up once per file, not once per row; unknown ones are an error (stock drops them).

    A column of tags names a handful of rows thousands of times: each id (or
    name) is resolved on its first appearance and remembered for the rest of
    the file (the widget belongs to one resource, which belongs to one import).
    """

    #: Ids remembered per file; past this many, new ones are looked up per cell.
    REMEMBER = 10_000

    def clean(self, value, row=None, **kwargs):
        if value in (None, ""):
            return []
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            tokens = [str(int(value))]
        else:
            tokens = [token.strip() for token in str(value).split(self.separator) if token.strip()]
        known = self.__dict__.setdefault("_known", {})
        unknown = {token for token in tokens if token not in known}
        if unknown:
            rows = self.model._default_manager.filter(**{f"{self.field}__in": list(unknown)})
            found = {str(getattr(obj, self.field)): obj for obj in rows}
            lookup = known if len(known) + len(unknown) <= self.REMEMBER else {**known}
            lookup.update({token: found.get(token) for token in unknown})
        else:
            lookup = known
        missing = sorted({token for token in tokens if lookup[token] is None})
        if missing:
            raise ValueError(
                f"No {self.model._meta.verbose_name} with {self.field} {_names(missing)} in this database."
            )
        return list({id(obj): obj for obj in (lookup[token] for token in tokens)}.values())


class DatabaseModelResource(resources.ModelResource):
    """A ModelResource that reads and writes only ``using``, and never carries a secret."""

    #: Widgets whose ``clean`` depends on the cell alone: a new-rows column is cleaned once per distinct cell.
    pure_widgets = (*PURE_WIDGETS, TextWidget)
    #: An invalid row rolls the import back, and no later batch is written.
    all_or_nothing = True
    #: What the preview saw of the rows the file updates (``rowstates``); set per import by ``run_import``.
    row_states = None
    #: Fields never exported, previewed or imported, on any model: matched by field name, attribute
    #: (each step of ``a__b``) or column; a model adds its own in ``console_secret_fields``.
    secret_fields = ("password",)
    #: Editable fields that the system sets, exported but never imported (a file's copy is stale at once).
    system_fields = ("last_login", "date_joined")
    #: Columns that grant privilege: only a superuser (or the command line) may import them.
    superuser_only_fields = ("is_superuser", "is_staff", "groups", "user_permissions")

    class Meta:
        use_bulk = True
        batch_size = 1000
        skip_diff = True
        #: A row whose file values equal the stored ones is "unchanged" and not written (``skip_row``).
        skip_unchanged = True
        store_row_values = True
        clean_model_instances = True
        use_transactions = True

    def __init__(self, using=None, **kwargs):
        super().__init__(**kwargs)
        self.using = using or router.db_for_write(self._meta.model)
        self._unique_conflicts = {}
        self._row_number = None
        self._m2m_file_fields = None
        self._seen_unique = {}
        #: The stored values (attname -> value) of the row being imported when it exists, else None.
        self._stored = None
        # Set per chunk by before_import; the package goes on to the rows even when before_import failed.
        self._not_in_file, self._file_fields, self._key_in_file = set(), None, True
        #: Row number -> NewRow for a chunk of a file of new rows (``before_import``), else None.
        self.new_rows = None
        #: Called with 1 after each row (the command line's progress bar).
        self.progress = None
        for name in [name for name, field in self.fields.items() if self.is_secret(name, field)]:
            del self.fields[name]
        for field in self.fields.values():
            field.readonly = field.readonly or not self.is_importable(field)

    # -- fields ----------------------------------------------------------------

    @classmethod
    def secret_names(cls):
        """The model's secret fields (``admin_site.secrets``) and the resource's own ``secret_fields``."""
        return {*(name.lower() for name in cls.secret_fields), *secret_field_names(cls._meta.model)}

    def is_secret(self, name, field):
        """Whether a resource field reads or writes a secret (a password hash, a token)."""
        secret = self.secret_names()
        steps = (field.attribute or "").split("__")
        return bool(secret & {name.lower(), (field.column_name or "").lower(), *(s.lower() for s in steps)})

    def is_importable(self, field):
        """Whether a file can set ``field``: an editable model field of its own, not one the system sets.

        Computed columns are export-only: a ``dehydrate_`` method or a field
        without an attribute, a related row's value (``customer__name``), a
        property or an annotation, and non-editable or system fields (counters,
        timestamps).  A file that has them imports the rest, and the preview
        names the columns it ignored (``ignored_columns``).
        """
        attribute = field.attribute
        if not attribute or "__" in attribute:
            return False
        try:
            model_field = self._meta.model._meta.get_field(attribute)
        except FieldDoesNotExist:
            return False
        return (
            model_field.editable
            and model_field.name not in self.system_fields
            and not getattr(model_field, "generated", False)
        )

    def importable_columns(self):
        """The columns an import takes (the import page lists them); the others are exported only."""
        return [field.column_name for field in super().get_import_fields() if not field.readonly]

    def get_export_order(self):
        """Never a secret, even when ``Meta.fields`` or ``export_order`` names it."""
        secret = self.secret_names()
        return tuple(name for name in super().get_export_order() if name.lower() not in secret)

    def get_import_order(self):
        secret = self.secret_names()
        return tuple(name for name in super().get_import_order() if name.lower() not in secret)

    @classmethod
    def field_from_django_field(cls, field_name, django_field, readonly):
        """Fields the model sets itself (timestamps, counters, a user's logins) are export-only."""
        readonly = readonly or not django_field.editable or field_name in cls.system_fields
        return super().field_from_django_field(field_name, django_field, readonly)

    #: Text columns read empty cells as "" (stock leaves TextField to a widget that keeps None)
    #: and undo the export's formula guard; yes/no columns refuse text they cannot read.
    WIDGETS_MAP = {
        **resources.ModelResource.WIDGETS_MAP,
        "CharField": TextWidget,
        "TextField": TextWidget,
        "BooleanField": YesNoWidget,
    }

    @classmethod
    def widget_kwargs_for_field(cls, field_name, django_field):
        kwargs = super().widget_kwargs_for_field(field_name, django_field)
        if isinstance(django_field, (models.CharField, models.TextField)):
            kwargs.update({"coerce_to_string": True, "allow_blank": not django_field.null})
        return kwargs

    @classmethod
    def get_fk_widget(cls, field):
        return _rebind(super().get_fk_widget(field), DatabaseForeignKeyWidget)

    @classmethod
    def get_m2m_widget(cls, field):
        return _rebind(super().get_m2m_widget(field), DatabaseManyToManyWidget)

    # -- where -----------------------------------------------------------------

    def get_db_connection_name(self):
        """Transaction, savepoints, dry-run rollback and sequence reset on the alias."""
        return self.using

    def get_queryset(self):
        """Instance loaders look rows up on the alias; a confirm locks the rows it updates (``rowstates``)."""
        queryset = super().get_queryset().using(self.using)
        if self.row_states is not None and self.row_states.checking:
            queryset = queryset.select_for_update()
        return queryset

    def init_instance(self, row=None):
        return self.on_alias(super().init_instance(row))

    def on_alias(self, instance):
        """A new ``instance`` bound to the alias; a user without a password gets an unusable one."""
        instance._state.db = self.using
        return _without_password(instance)

    def do_instance_save(self, instance, is_create):
        instance.save(force_insert=is_create, using=self.using)

    def import_data(self, dataset, dry_run=False, raise_errors=False, *, via="admin", file_format="", **kwargs):
        """Import a whole file (a ``RowStream`` or a Dataset) a chunk at a time, all-or-nothing, audited.

        Any row error rolls back every row; ``result.problems`` lists the
        errors (up to a cap) with their file row, column and value.
        """
        for ignored in ("use_transactions", "collect_failed_rows", "rollback_on_validation_errors"):
            kwargs.pop(ignored, None)  # always: one transaction, no failed-rows copy, any error rolls back
        return run_import(self, dataset, dry_run=dry_run, via=via, file_format=file_format, **kwargs)

    def import_chunk(self, dataset, dry_run, **kwargs):
        """One chunk of the file through the package's ``import_data``, inside ``run_import``'s transaction."""
        kwargs.pop("file_name", None)
        with using_database(self.using):
            result = super().import_data(
                dataset, dry_run, False, use_transactions=False, rollback_on_validation_errors=True, **kwargs
            )
        failure = database_failure(result)
        if failure is not None:
            raise failure  # the database's fault, not the file's: stop, with one message naming the database
        result.problems = problems(result, self, dataset)
        return result

    def import_row(self, row, instance_loader, **kwargs):
        """A prepared new row is queued for ``bulk_create``; any other goes through the package's ``import_row``.

        The package files every row's exception under the row; a failing database stops at once instead.
        """
        if self.new_rows is not None:
            return self.import_new_row(row, self.new_rows.pop(kwargs["row_number"]), **kwargs)
        row_result = super().import_row(row, instance_loader, **kwargs)
        for error in row_result.errors:
            if isinstance(error.error, DATABASE_FAILURES):
                raise error.error
        return row_result

    def import_new_row(self, row, prepared, **kwargs):
        """The RowResult of a row ``before_import`` prepared; a valid one is saved (queued for the batch)."""
        row_result = self.get_row_result_class()()
        row_result.row_values = row
        if prepared.failure is not None:
            row_result.import_type = RowResult.IMPORT_TYPE_ERROR
            error = self.get_error_result_class()(prepared.failure, row=row, number=kwargs["row_number"])
            row_result.errors.append(error)
            return row_result
        if prepared.error is not None:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = prepared.error
            return row_result
        instance = prepared.instance
        row_result.import_type = RowResult.IMPORT_TYPE_NEW
        try:
            self.save_instance(instance, True, row, **kwargs)
            row_result.object_repr = str(instance)
            # Per import, not flipped on the class as the package's import_row does.
            if self._meta.store_instance or kwargs.get("retain_instance_in_row_result", False):
                row_result.instance = instance
            self.after_import_row(row, row_result, **kwargs)
        except ValidationError as e:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = e
        except DATABASE_FAILURES:
            raise
        except Exception as e:
            row_result.import_type = RowResult.IMPORT_TYPE_ERROR
            row_result.errors.append(self.get_error_result_class()(e, row=row, number=kwargs["row_number"]))
        return row_result

    def handle_import_error(self, result, error, raise_errors=False):
        """A failing database (a lost connection, a server gone away) stops the import at once."""
        if isinstance(error, DATABASE_FAILURES):
            raise error
        super().handle_import_error(result, error, raise_errors)

    def start_file(self):
        """Forget the previous file: unique values seen in earlier chunks are checked against later ones."""
        self._seen_unique = {}

    def ignored_columns(self, headers):
        """The file's columns this resource exports but never imports (computed or system-set), in file order."""
        readonly = {field.column_name for field in self.fields.values() if field.readonly}
        return [header for header in dict.fromkeys(headers) if header in readonly]

    def export(self, queryset=None, **kwargs):
        with using_database(self.using):
            if queryset is not None:
                queryset = queryset.using(self.using)
            return super().export(queryset, **kwargs)

    # -- checks before any row -------------------------------------------------

    def before_import(self, dataset, **kwargs):
        """Check the header row, then unique columns against the file and the database; prepare new rows."""
        super().before_import(dataset, **kwargs)
        headers = dataset.headers or []
        self.new_rows = None
        self._key_in_file = bool(self.key_columns() & set(headers))
        check_headers(self, headers)
        check_privilege(self, headers, kwargs.get("user"))
        self._unique_conflicts = find_unique_conflicts(self, dataset, self._seen_unique)
        # Work out once per file, not per row, which fields the file carries.
        present = [f for f in super().get_import_fields() if f.column_name in headers]
        self._file_fields = present
        self._compared = None
        carried = {f.attribute for f in present if f.attribute and not f.readonly}
        model_fields = self._meta.model._meta.concrete_fields
        self._not_in_file = {f.name for f in model_fields if f.name not in carried and f.attname not in carried}
        self._cleaner = FieldCleaner(self._meta.model)
        self._m2m_file_fields = self.m2m_fields(dict.fromkeys(headers))
        plain = [f for f in present if not f.readonly and f not in self._m2m_file_fields]
        if self.takes_new_rows_path(headers):
            new_rows = NewRows(self, plain, self._not_in_file, kwargs)
            self.new_rows = new_rows.prepare(dataset, self._unique_conflicts, kwargs)

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        self._file_fields = self._not_in_file = self._cleaner = self._m2m_file_fields = self.new_rows = None
        self._compared = self._stored = None

    def takes_new_rows_path(self, headers):
        """Every row is new (no key column), and no subclass customises a per-row hook."""
        present = [f for f in super().get_import_fields() if f.column_name in headers and not f.readonly]
        return (
            self._meta.use_bulk
            and self._meta.skip_diff
            and self._meta.clean_model_instances
            and not self._key_in_file
            and all(f.attribute and "__" not in f.attribute for f in present)
            and all(getattr(type(self), hook) is getattr(DatabaseModelResource, hook) for hook in ROW_HOOKS)
        )

    def key_columns(self):
        """The file columns of the declared ``import_id_fields`` (the rows' keys)."""
        return {self.fields[f].column_name for f in self._meta.import_id_fields if f in self.fields}

    def get_import_id_fields(self):
        """No key fields for a file without the key column: every row is new (stock allows that only for "id")."""
        return self._meta.import_id_fields if self._key_in_file else []

    def get_instance(self, instance_loader, row):
        """A file without the key column has no existing rows to find.

        A key cell that its column cannot read is a problem of that column (stock lets the
        widget's error through unnamed, e.g. ``[<class 'decimal.ConversionSyntax'>]``).
        """
        if not self._key_in_file:
            return None
        try:
            instance = super().get_instance(instance_loader, row)
        except (ValueError, ArithmeticError):  # decimal.InvalidOperation is an ArithmeticError
            self.raise_unreadable_key(row)
            raise
        if instance is not None and self.row_states is not None:
            fields = [f.attribute for f in self.get_import_fields() if f.attribute and "__" not in f.attribute]
            concrete = [
                self._meta.model._meta.get_field(name) for name in fields if _is_concrete(self._meta.model, name)
            ]
            self.row_states.visit(instance, concrete)
        return instance

    def raise_unreadable_key(self, row):
        """A ``ValidationError`` naming the first key column of ``row`` its widget cannot read, if there is one.

        Called only after the lookup failed, so a good row's key is cleaned once, by import-export.
        """
        for name in self.get_import_id_fields():
            field = self.fields[name]
            try:
                field.clean(row)
            except (ValueError, ArithmeticError) as error:
                message = "Enter a whole number." if isinstance(error, ArithmeticError) else str(error)
                raise ValidationError({field.attribute or name: message}) from None

    def after_init_instance(self, instance, new, row, **kwargs):
        """Note the stored values of an existing row, for ``skip_row`` to compare the file's with."""
        super().after_init_instance(instance, new, row, **kwargs)
        if new:
            self._stored = None
        else:
            self._stored = {column.attname: getattr(instance, column.attname) for _, column in self.compared_fields()}

    def compared_fields(self):
        """(resource field, model field) of the file's importable columns the model stores; once per file."""
        cached = getattr(self, "_compared", None)
        if cached is not None and self._file_fields is not None:
            return cached
        model = self._meta.model
        importable = [field for field in self.get_import_fields() if not field.readonly and field.attribute]
        self._compared = [
            (field, model._meta.get_field(field.attribute))
            for field in importable
            if _is_concrete(model, field.attribute)
        ]
        m2m = [field for field in importable if isinstance(field.widget, widgets.ManyToManyWidget)]
        # A column the model does not store (a property): the row cannot be known unchanged.
        self._all_compared = len(self._compared) + len(m2m) == len(importable)
        return self._compared

    def skip_row(self, instance, original, row, import_validation_errors=None):
        """An existing row whose every imported value equals the stored one is unchanged: not written, not logged.

        Stock compares only with ``skip_diff`` off (a deep copy and a diff per
        row).  Values compare as the file can carry them: a stored value that
        the column's widget renders as the file's cell (a datetime's
        microseconds, which the export drops; an XLSX date read as a datetime)
        is the same value, and is kept as stored should another column change.
        A column the model does not store (a property) is never unchanged.
        """
        if not self._meta.skip_unchanged or import_validation_errors or self._stored is None:
            return False
        compared = self.compared_fields()
        same = self._all_compared
        for field, column in compared:
            stored, value = self._stored[column.attname], getattr(instance, column.attname)
            if stored == value:
                continue
            if not column.is_relation and _renders_alike(field.widget, stored, value):
                setattr(instance, column.attname, stored)
                continue
            same = False
        for field in self._m2m_file_fields or ():
            same = same and field.column_name in row and self.same_related(instance, field)
        return same

    def same_related(self, instance, field):
        """Whether the M2M cell names exactly the related rows stored (``clean_m2m`` cleaned it)."""
        cleaned = getattr(instance, "import_m2m", {}).get(field.attribute)
        if cleaned is None:
            return False
        stored = getattr(instance, field.attribute).db_manager(self.using).values_list("pk", flat=True)
        return sorted(obj.pk for obj in cleaned) == sorted(stored)

    def new_instance(self, values):
        """A new row made by the model's own constructor, on the alias, from the cleaned ``values``."""
        return self.on_alias(self._meta.model(**values))

    def get_import_fields(self):
        """During an import, only the fields whose column the file has (stock walks every field per row)."""
        cached = getattr(self, "_file_fields", None)
        return cached if cached is not None else super().get_import_fields()

    def before_import_row(self, row, **kwargs):
        super().before_import_row(row, **kwargs)
        self._row_number = kwargs.get("row_number")

    def save_instance(self, instance, is_create, row, **kwargs):
        """A preview validates every row and sends nothing to the database (stock writes, then rolls back)."""
        if not kwargs.get("dry_run", False):
            super().save_instance(instance, is_create, row, **kwargs)

    def delete_instance(self, instance, row, **kwargs):
        if not kwargs.get("dry_run", False):
            instance._state.db = self.using
            super().delete_instance(instance, row, **kwargs)

    def after_import_row(self, row, row_result, **kwargs):
        super().after_import_row(row, row_result, **kwargs)
        if self.progress is not None:
            self.progress(1)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        """full_clean of the file's columns, without per-row unique queries (the batch check found those).

        Fields the file does not carry keep their default or stored value,
        which the model already accepts.
        """
        names = field_names(self._meta.model)
        errors = {names.get(key, key): value for key, value in (import_validation_errors or {}).items()}
        for attribute, message in self._unique_conflicts.get(self._row_number, {}).items():
            errors.setdefault(names.get(attribute, attribute), ValidationError(message, code="unique"))
        if self._meta.clean_model_instances:
            cleaner = getattr(self, "_cleaner", None) or FieldCleaner(self._meta.model)
            try:
                cleaner.full_clean(instance, exclude=set(errors) | (self._not_in_file or set()))
            except ValidationError as e:
                errors = e.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    # -- bulk writes, many-to-many included ------------------------------------

    def import_instance(self, instance, row, **kwargs):
        """Also clean the M2M columns now (stock cleans them only after saving, or never in bulk)."""
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        errors.update(self.clean_m2m(instance, row, **kwargs))
        if errors:
            raise ValidationError(errors)

    def clean_m2m(self, instance, row, **kwargs):
        """Clean the row's M2M cells into ``instance.import_m2m`` (attribute -> related rows); return their errors."""
        errors = {}
        instance.import_m2m = {}
        m2m = self._m2m_file_fields if self._m2m_file_fields is not None else self.m2m_fields(row)
        for field in m2m:
            try:
                instance.import_m2m[field.attribute] = list(field.clean(row, **kwargs))
            except ValueError as e:
                errors[field.attribute] = ValidationError(str(e), code="invalid")
        return errors

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        """Widgets raise ArithmeticError for "abc" in a number column; make it a field error."""
        try:
            super().import_field(field, instance, row, is_m2m, **kwargs)
        except (ArithmeticError, TypeError) as exc:
            raise ValueError(widget_message(field, exc)) from None

    def m2m_fields(self, row):
        return [
            field
            for field in self.get_import_fields()
            if isinstance(field.widget, widgets.ManyToManyWidget)
            and not field.readonly
            and field.attribute
            and field.column_name in row
        ]

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        """Write the queued new rows with ``bulk_create`` on the alias: never in a preview, nor once a row failed.

        Once the import is bound to roll back, writing more is wasted.
        """
        try:
            if self.create_instances and not dry_run and not self.bound_to_fail(result):
                create_rows(self._meta.model, self.create_instances, self.using, batch_size=self._meta.batch_size)
                self.write_m2m(self.create_instances, replace=False)
        except Exception as e:
            self.handle_import_error(result, e, raise_errors)
        finally:
            self.create_instances.clear()

    def bound_to_fail(self, result):
        """Whether the import so far has a problem that rolls it all back."""
        if result is None:
            return False
        return bool(result.base_errors or result.error_rows or (result.invalid_rows and self.all_or_nothing))

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        if self.update_instances and (using_transactions or not dry_run):
            try:
                fields = [
                    f.attribute
                    for f in self.get_import_fields()
                    if f.attribute
                    and not f.readonly
                    and f.attribute not in self._meta.import_id_fields
                    and not isinstance(f.widget, widgets.ManyToManyWidget)
                ]
                if fields:
                    self._meta.model.objects.using(self.using).bulk_update(
                        self.update_instances, fields, batch_size=batch_size
                    )
                self.write_m2m(self.update_instances, replace=True)
            except Exception as e:
                self.handle_import_error(result, e, raise_errors)
            finally:
                self.update_instances.clear()

    def bulk_delete(self, using_transactions, dry_run, raise_errors, result=None):
        if self.delete_instances and (using_transactions or not dry_run):
            try:
                pks = [o.pk for o in self.delete_instances]
                self._meta.model.objects.using(self.using).filter(pk__in=pks).delete()
            except Exception as e:
                self.handle_import_error(result, e, raise_errors)
            finally:
                self.delete_instances.clear()

    def save_m2m(self, instance, row, **kwargs):
        """Row-by-row mode: write the cleaned M2M values on the alias."""
        if self._meta.use_bulk or kwargs.get("dry_run", False):
            return
        for attribute, related in getattr(instance, "import_m2m", {}).items():
            getattr(instance, attribute).set(related)

    def write_m2m(self, instances, replace):
        """Insert the through rows of a batch in one statement per relation."""
        by_attribute = defaultdict(list)
        for instance in instances:
            for attribute, related in getattr(instance, "import_m2m", {}).items():
                by_attribute[attribute].append((instance, related))
        for attribute, pairs in by_attribute.items():
            field = self._meta.model._meta.get_field(attribute)
            through = field.remote_field.through
            source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
            if replace:
                through.objects.using(self.using).filter(**{f"{source}__in": [i.pk for i, _ in pairs]}).delete()
            rows = [
                through(**{f"{source}_id": instance.pk, f"{target}_id": obj.pk})
                for instance, related in pairs
                for obj in related
            ]
            through.objects.using(self.using).bulk_create(rows, batch_size=self._meta.batch_size)


def _is_concrete(model, name):
    """Whether ``name`` is a column of ``model`` (not a many-to-many, a property or a reverse relation)."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return field.concrete and not field.many_to_many


def _renders_alike(widget, stored, value):
    """Whether the column's widget writes both values as the same cell (then the file cannot tell them apart)."""
    try:
        return widget.render(stored) == widget.render(value)
    except (TypeError, ValueError, AttributeError, ArithmeticError):
        return False


def _rebind(partial, widget_class):
    """Swap the widget class of a ``functools.partial`` from ModelResource's widget hooks."""
    return type(partial)(widget_class, *partial.args, **partial.keywords)


def check_headers(resource, headers):
    """Unknown, duplicate and missing required columns are errors, not blank fields."""
    known = {field.column_name: field for field in resource.get_import_fields()}  # read-only ones are ignored
    problems = []
    seen = set()
    duplicates = sorted({h for h in headers if h in seen or seen.add(h)})
    if duplicates:
        problems.append("duplicate columns: " + _names(map(str, duplicates)))
    unknown = [str(h) for h in headers if h not in known]
    if unknown:
        problems.append(
            f"unknown columns: {_names(unknown)} (expected some of: {', '.join(resource.importable_columns())})"
        )
    if getattr(resource, "updates_only", False):
        # Every row must be found by its key; its other columns keep their stored values when left out.
        fields = resource.fields
        keys = [fields[name].column_name for name in resource._meta.import_id_fields if name in fields]
        missing = [name for name in keys if name not in headers]
        if missing:
            problems.append("missing key columns: " + ", ".join(missing))
    else:
        missing = [name for name in required_columns(resource) if name not in headers]
        if missing:
            problems.append("missing required columns: " + ", ".join(missing))
    if problems:
        raise ValidationError("The header row is not valid: " + "; ".join(problems) + ".")


def check_privilege(resource, headers, user):
    """Columns that grant privilege are a superuser's to import; the command line (no user) is the operator's."""
    if user is None or user.is_superuser:
        return
    granted = {
        field.column_name
        for field in resource.fields.values()
        if field.column_name in headers and (field.attribute or "").split("__")[0] in resource.superuser_only_fields
    }
    if granted:
        raise ValidationError(
            f"Only a superuser can import {', '.join(sorted(granted))}: remove "
            f"{'these columns' if len(granted) > 1 else 'this column'} and upload the file again."
        )


def _has_password(model):
    return callable(getattr(model, "set_unusable_password", None))


def _without_password(instance):
    """A new user imported without a password (hashes are never imported) can only log in once one is set."""
    if _has_password(type(instance)) and not instance.password:
        instance.set_unusable_password()
    return instance


def _names(names, most=10):
    """A few of the file's column names, each cut short: a hostile header has a million long ones."""
    names = list(names)
    shown = ", ".join(excerpt(name, 40) for name in names[:most])
    return shown + (f" and {len(names) - most:,} more" if len(names) > most else "")


def required_columns(resource):
    """Columns without which a new row cannot be valid: non-blank model fields with no default."""
    model = resource._meta.model
    id_fields = set(resource._meta.import_id_fields)
    required = []
    for name, field in resource.fields.items():
        if field.readonly or name in id_fields or not field.attribute:
            continue
        try:
            model_field = model._meta.get_field(field.attribute)
        except Exception:
            continue
        if model_field.many_to_many or model_field.auto_created or not model_field.editable:
            continue
        if not model_field.blank and not model_field.has_default() and not model_field.has_db_default():
            required.append(field.column_name)
    return required


#: The ``seen`` entry of ``find_unique_conflicts`` that holds the rows' keys (no attribute has this name).
REPEATED_KEYS = " keys"


def repeated_keys(resource, dataset, earlier):
    """Row number -> message for a row whose key (every key column) an earlier row of the file has.

    Importing both would add the row twice (the database refuses the second at the
    confirm) or update it twice.  ``earlier`` maps keys to file rows across chunks.
    MySQL compares text keys without case, so there the key is compared casefolded.
    """
    fields = [resource.fields[name] for name in resource.get_import_id_fields() if name in resource.fields]
    headers = dataset.headers or []
    if not fields or any(field.column_name not in headers for field in fields):
        return {}
    fold = connections[resource.using].vendor == "mysql"
    source_rows = getattr(dataset, "source_rows", None)
    columns = [dataset.get_col(headers.index(field.column_name)) for field in fields]
    repeated = {}
    for number, parts in enumerate(zip(*columns, strict=True), 1):
        key = tuple("" if part is None else str(part).strip() for part in parts)
        if "" in key:
            continue  # no key: a new row, numbered by the database
        compared = tuple(part.casefold() for part in key) if fold else key
        first = earlier.get(compared)
        if first is not None:
            shown = ", ".join(excerpt(part, 40) for part in key)
            repeated[number] = f"The key {shown} is also in row {first} of this file: a row is imported once."
        else:
            earlier[compared] = source_rows[number - 1] if source_rows else number + 1
    return repeated


def find_unique_conflicts(resource, dataset, seen=None):
    """Row number -> {attribute: message} for unique values repeated in the file or taken in the database.

    One query per unique column per ``LOOKUP_CHUNK`` values instead of one per
    row; a row conflicts with the database when another row (a different pk)
    holds the value.  ``seen`` (attribute -> value -> file row) carries the
    values of earlier chunks of the same file, and is updated.
    """
    seen = {} if seen is None else seen
    model = resource._meta.model
    id_field = next(iter(resource._meta.import_id_fields), None)
    id_column = resource.fields[id_field].column_name if id_field in resource.fields else None
    headers = dataset.headers or []
    source_rows = getattr(dataset, "source_rows", None)
    conflicts = defaultdict(dict)
    if id_column in headers:
        for number, message in hidden_keys(resource, dataset.get_col(headers.index(id_column))).items():
            conflicts[number][id_field] = message
    for number, message in repeated_keys(resource, dataset, seen.setdefault(REPEATED_KEYS, {})).items():
        conflicts[number].setdefault(id_field, message)
    for field in resource.fields.values():
        if field.readonly or field.column_name not in headers or not field.attribute:
            continue
        try:
            model_field = model._meta.get_field(field.attribute)
        except Exception:
            continue
        if not model_field.unique or model_field.primary_key or model_field.is_relation:
            continue
        raws = dataset.get_col(headers.index(field.column_name))
        # Unique columns are plain (not relations): each cell cleaned on its own.
        cleaned = column_cleaner(field, {}, resource.pure_widgets)(raws, [{field.column_name: raw} for raw in raws])
        ids = dataset.get_col(headers.index(id_column)) if id_column in headers else None
        values, earlier = {}, seen.setdefault(field.attribute, {})
        for number, (raw, value) in enumerate(zip(raws, cleaned, strict=True), 1):
            if type(value) is CellError or value in (None, ""):
                continue  # the row's own validation reports a bad cell
            key = _normalise(value)
            row_id = str(ids[number - 1]).strip() if ids is not None else ""
            first = earlier.get(key)
            if first is None and key in values:
                first = values[key][0]
                first = source_rows[first - 1] if source_rows else first + 1
            if first is not None:
                conflicts[number][field.attribute] = (
                    f"{excerpt(raw, 80)!r} is also in row {first} of this file; {field.column_name} must be unique."
                )
                continue
            values[key] = (number, row_id)
        for key, (number, _) in values.items():
            earlier[key] = source_rows[number - 1] if source_rows else number + 1
        keys = list(values)
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = _lookup_values(keys[start : start + LOOKUP_CHUNK])
            lookup = {f"{field.attribute}__in": chunk}
            for existing, pk in (
                model._default_manager.using(resource.using).filter(**lookup).values_list(field.attribute, "pk")
            ):
                key = _normalise(existing)
                number, row_id = values.get(key, (None, None))
                if number is not None and row_id != str(pk):
                    conflicts[number][field.attribute] = (
                        f"{model._meta.verbose_name.capitalize()} with this {model_field.verbose_name} "
                        f"({existing}) already exists in this database."
                    )
    return dict(conflicts)


def hidden_keys(resource, keys):
    """Row number -> message for keys of rows the table holds but this list does not show (a proxy's manager).

    The import would take such a row for a new one and the database would
    refuse its key at the confirm; it is a row problem in the preview instead.
    """
    model = resource._meta.model
    pk = model._meta.pk
    if model._meta.is_composite_pk:
        return {}  # the file holds a key a column at a time; only a single-column key is looked up here
    wanted = {}
    for number, key in enumerate(keys, 1):
        try:
            value = pk.to_python(key)
        except ValidationError:
            continue  # the row's own validation reports it
        if value not in (None, ""):
            wanted.setdefault(value, []).append(number)
    if not wanted:
        return {}
    values, hidden = list(wanted), set()
    table = model._meta.concrete_model._base_manager.using(resource.using)
    shown = resource.get_queryset()
    for start in range(0, len(values), LOOKUP_CHUNK):
        chunk = values[start : start + LOOKUP_CHUNK]
        in_table = set(table.filter(pk__in=chunk).values_list("pk", flat=True))
        if in_table:
            hidden |= in_table - set(shown.filter(pk__in=in_table).values_list("pk", flat=True))
    name = model._meta.verbose_name
    return {
        number: f"The row with {pk.name} {key} is not a {name}: it cannot be imported into this list."
        for key in hidden
        for number in wanted[key]
    }


def _normalise(value):
    """Unique text compares case-insensitively, as MariaDB's collations (and our lower-cased emails) do."""
    return value.strip().casefold() if isinstance(value, str) else value


def _lookup_values(keys):
    """The values to look up for normalised keys: as given and lower-cased (SQLite compares exactly)."""
    values = set(keys)
    values.update(k.lower() for k in keys if isinstance(k, str))
    return list(values)


def resource_for(model, fields=None, **meta):
    """A DatabaseModelResource class for ``model``; pass ``using=`` to its instances.

    Rows are matched on the primary key (whatever it is called; every field of a composite one); models with
    multi-table parents are written row by row (bulk_create cannot).  A
    generated column is the database's to compute: never imported or exported.
    """
    options = {"import_id_fields": [field.name for field in model._meta.pk_fields], **meta}
    generated = [field.name for field in model._meta.concrete_fields if field.generated]
    if generated and fields is None:
        options["exclude"] = [*options.get("exclude", ()), *generated]
    if model._meta.is_composite_pk and fields is None:  # its fields are columns of their own; "pk" is none
        options["exclude"] = [*options.get("exclude", ()), model._meta.pk.name]
    if model._meta.concrete_model._meta.parents:
        options["use_bulk"] = False
    if fields is not None:
        options["fields"] = fields
    return resources.modelresource_factory(model, resource_class=DatabaseModelResource, meta_options=options)
