"""Template helpers for panel pages."""

import re

from django import template
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeData, mark_safe

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


@register.filter
def panel_breadcrumbs(html, crumbs):
    """A page's breadcrumbs beginning "Console › <panel>" instead of Django's "Home › <app>".

    Every admin template (Django's, django-import-export's, the console's own) starts its breadcrumbs with a
    link to the panel's index named "Home", then mostly the app's index: inside a panel, "Home" was ambiguous
    and the app repeated the panel.  Rewriting that one leading link in ``admin/base_site.html`` covers every
    page, where overriding each template's breadcrumbs block would copy a dozen of them.  ``crumbs`` is
    ``DatabaseAdminSite.each_context``'s ``panel_crumbs``; without it (a page that is no panel's) the
    breadcrumbs are left as they are.
    """
    if not crumbs or not isinstance(html, SafeData):
        return html
    index = re.escape(crumbs["index"])
    pattern = rf'<a href="{index}">[^<]*</a>(\s*&rsaquo;\s*<a href="{index}[^/"]+/">[^<]*</a>)?'
    replacement = format_html(
        '<a href="{}" class="console-crumb">Console</a> &rsaquo; <a href="{}" class="panel-crumb">{}</a>',
        crumbs["console"],
        crumbs["index"],
        crumbs["title"],
    )
    return mark_safe(re.sub(pattern, lambda match: replacement, str(html), count=1))  # noqa: S308 - Django's own output
