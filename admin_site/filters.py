"""List filters that build their choices on the panel's database.

Django's related and all-values filters query ``_default_manager`` (the
router's choice) for their choices; ``bind_list_filter`` swaps them for these
subclasses, so a ModelAdmin author keeps writing plain ``list_filter``.
"""

from django.contrib.admin import filters
from django.contrib.admin.utils import get_fields_from_path

from admin_site.pinning import using_database


class DatabaseRelatedFieldListFilter(filters.RelatedFieldListFilter):
    """``Field.get_choices`` has no ``using``: evaluate it with the panel pinned."""

    def field_choices(self, field, request, model_admin):
        with using_database(model_admin.admin_site.alias):
            return super().field_choices(field, request, model_admin)


class DatabaseRelatedOnlyFieldListFilter(filters.RelatedOnlyFieldListFilter):
    """Inner pk subquery and outer choices query on one database (else a 500)."""

    def field_choices(self, field, request, model_admin):
        with using_database(model_admin.admin_site.alias):
            return super().field_choices(field, request, model_admin)


class DatabaseAllValuesFieldListFilter(filters.AllValuesFieldListFilter):
    """Across a relation the values come from ``parent_model._default_manager``."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = self.lookup_choices.using(model_admin.admin_site.alias)


BOUND_FILTERS = {
    filters.RelatedFieldListFilter: DatabaseRelatedFieldListFilter,
    filters.RelatedOnlyFieldListFilter: DatabaseRelatedOnlyFieldListFilter,
    filters.AllValuesFieldListFilter: DatabaseAllValuesFieldListFilter,
}


def bind_list_filter(model, entry):
    """Return ``entry`` (a ``list_filter`` item) with database-bound filter classes.

    Plain field paths get the class Django would pick, bound; ``(path, class)``
    pairs get the bound twin of their class.  ``SimpleListFilter`` subclasses
    filter the changelist's (already bound) queryset and pass unchanged.
    """
    if isinstance(entry, str):
        field = get_fields_from_path(model, entry)[-1]
        for test, filter_class in filters.FieldListFilter._field_list_filters:
            if test(field):
                bound = BOUND_FILTERS.get(filter_class)
                return (entry, bound) if bound else entry
        return entry
    if isinstance(entry, (list, tuple)):
        path, filter_class = entry
        return (path, BOUND_FILTERS.get(filter_class, filter_class))
    return entry
