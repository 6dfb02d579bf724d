"""Template helpers for recorded changes (``admin_site.history``)."""

from django import template

register = template.Library()


@register.filter
def change_value(value):
    """A recorded value as text: a many-to-many list joined, nothing as "(empty)"."""
    if value is None or value == "" or value == []:
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(str(name) for name in value)
    return value
