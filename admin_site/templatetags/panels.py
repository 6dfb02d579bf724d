"""Template helpers for panel pages."""

from django import template
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def panel_change_url(context, entry):
    """A log entry's change URL within the current panel.

    ``LogEntry.get_admin_url()`` reverses without ``current_app`` and so
    links to whichever panel was mounted last.
    """
    if not (entry.content_type_id and entry.object_id):
        return None
    ct = entry.content_type
    try:
        return reverse(
            f"admin:{ct.app_label}_{ct.model}_change",
            args=(quote(entry.object_id),),
            current_app=context.request.current_app,
        )
    except NoReverseMatch:
        return None


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (None when absent)."""
    return (mapping or {}).get(key)
