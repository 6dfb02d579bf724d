"""List filters that build their choices on the panel's database, and filters for big tables.

Django's related and all-values filters query ``_default_manager`` (the
router's choice) for their choices; ``bind_list_filter`` swaps them for these
subclasses, so a ModelAdmin author keeps writing plain ``list_filter``.

For big tables: ``RelatedIdFieldListFilter`` filters by a related row's key
typed in (or picked in the raw-id popup) instead of listing every related row;
``ColumnValuesFieldListFilter`` lists a column's values from the whole table,
which an index on the column answers without reading the rows.
"""

from django.contrib.admin import filters
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_fields_from_path, get_last_value_from_parameters
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils.translation import gettext_lazy as _

from admin_site.changelists.values import column_value
from admin_site.pinning import read_database, using_database

#: Django's list of links, or one select when there are more than 15 values (cities, tags).
SELECT_TEMPLATE = "admin/filter_select.html"


class DatabaseRelatedFieldListFilter(filters.RelatedFieldListFilter):
    """``Field.get_choices`` has no ``using``: evaluate it with the panel pinned."""

    template = SELECT_TEMPLATE

    def field_choices(self, field, request, model_admin):
        with using_database(model_admin.admin_site.alias):
            return super().field_choices(field, request, model_admin)


class DatabaseRelatedOnlyFieldListFilter(filters.RelatedOnlyFieldListFilter):
    """Inner pk subquery and outer choices query on one database (else a 500)."""

    template = SELECT_TEMPLATE

    def field_choices(self, field, request, model_admin):
        with using_database(model_admin.admin_site.alias):
            return super().field_choices(field, request, model_admin)


class DatabaseAllValuesFieldListFilter(filters.AllValuesFieldListFilter):
    """Across a relation the values come from ``parent_model._default_manager``."""

    template = SELECT_TEMPLATE

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = self.lookup_choices.using(read_database(model_admin.admin_site.alias))


class RelatedIdFieldListFilter(filters.FieldListFilter):
    """Filter by one related row, named by its key: Django's related filters list (and load) every candidate."""

    template = "admin/filter_related_id.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_kwarg = f"{field_path}__{field.target_field.name}__exact"
        self.lookup_value = get_last_value_from_parameters(params, self.lookup_kwarg)
        super().__init__(field, request, params, model, model_admin, field_path)
        self.related_model = field.remote_field.model
        self.target_field = field.target_field
        self.alias = model_admin.admin_site.alias
        self.title = field.verbose_name
        self.hidden_params = []

    def has_output(self):
        return True

    def expected_parameters(self):
        return [self.lookup_kwarg]

    def queryset(self, request, queryset):
        """Django's filter; a key the related column cannot hold is a bad lookup (``?e=1``), as "abc" is.

        Django checks the range of an integer key, but not of a key that is itself
        a relation (a child model's ``..._ptr``): SQLite cannot bind one past 64 bits (a 500).
        """
        if self.lookup_value:
            try:
                column_value(self.target_field, self.lookup_value, connections[self.alias])
            except ValueError as error:
                raise IncorrectLookupParameters(error) from error
        return super().queryset(request, queryset)

    def selected_row(self):
        """The chosen related row (one primary-key look-up), or the typed key if there is no such row."""
        if not self.lookup_value:
            return None
        try:
            column_value(self.target_field, self.lookup_value, connections[self.alias])
            manager = self.related_model._default_manager.using(read_database(self.alias))
            row = manager.filter(pk=self.lookup_value).first()
        except (ValueError, TypeError, ValidationError):
            row = None
        return row if row is not None else self.lookup_value

    def get_facet_counts(self, pk_attname, filtered_qs):
        return {}

    def choices(self, changelist):
        self.hidden_params = [(name, value) for name, value in changelist.params.items() if name != self.lookup_kwarg]
        yield {
            "selected": not self.lookup_value,
            "query_string": changelist.get_query_string(remove=[self.lookup_kwarg]),
            "display": _("All"),
        }
        if self.lookup_value:
            yield {
                "selected": True,
                "query_string": changelist.get_query_string({self.lookup_kwarg: self.lookup_value}),
                "display": str(self.selected_row()),
            }


class ColumnValuesFieldListFilter(filters.AllValuesFieldListFilter):
    """The column's values over the whole table, on the panel's database: an index on the column lists them.

    Django's all-values filter takes them from the admin's queryset, which on a
    proxy with a filtered manager reads every row the manager keeps.
    """

    template = SELECT_TEMPLATE

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        parent_model = get_fields_from_path(model, field_path)[-1].model._meta.concrete_model
        self.lookup_choices = (
            parent_model._base_manager.using(read_database(model_admin.admin_site.alias))
            .distinct()
            .order_by(field.name)
            .values_list(field.name, flat=True)
        )


BOUND_FILTERS = {
    filters.RelatedFieldListFilter: DatabaseRelatedFieldListFilter,
    filters.RelatedOnlyFieldListFilter: DatabaseRelatedOnlyFieldListFilter,
    filters.AllValuesFieldListFilter: DatabaseAllValuesFieldListFilter,
}


def bound_field_list_filter(field, request, params, model, model_admin, field_path):
    """The filter Django picks for ``field`` (``FieldListFilter.create``), its choices read on the panel's database.

    Related filters list their choices as they are built, with the panel pinned;
    an all-values filter's lazy choices are bound to the alias.
    """
    alias = model_admin.admin_site.alias
    with using_database(alias):
        spec = filters.FieldListFilter.create(field, request, params, model, model_admin, field_path=field_path)
    if isinstance(spec, filters.AllValuesFieldListFilter):
        spec.lookup_choices = spec.lookup_choices.using(read_database(alias))
    if spec.template == "admin/filter.html":
        spec.template = SELECT_TEMPLATE  # links up to 15 values, one select beyond (countries, tags)
    return spec


def bind_list_filter(model, entry):
    """Return ``entry`` (a ``list_filter`` item) with database-bound filter classes.

    Plain field paths get the filter Django would pick, bound
    (``bound_field_list_filter``); ``(path, class)`` pairs get the bound twin of
    their class.  ``SimpleListFilter`` subclasses filter the changelist's
    (already bound) queryset and pass unchanged.
    """
    if isinstance(entry, str):
        return (entry, bound_field_list_filter)
    if isinstance(entry, (list, tuple)):
        path, filter_class = entry
        return (path, BOUND_FILTERS.get(filter_class, filter_class))
    return entry
