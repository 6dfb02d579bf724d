"""Template tags of the console's changelists: page links that read from a deep page, the date hierarchy
from the first and last date, and the result list rendered per column."""

from django import template
from django.contrib.admin.templatetags.admin_list import paginator_number, result_headers, result_hidden_fields
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from admin_site.changelists.results import fast_results
from admin_site.concurrency import STATE_FIELD

register = template.Library()


@register.simple_tag
def page_number_link(cl, number):
    """Django's ``paginator_number``; near a deep page, its link reads from that page's rows (``page_link``)."""
    query = cl.page_link(number) if hasattr(cl, "page_link") else None
    if query is None:
        return paginator_number(cl, number)
    end = mark_safe(' class="end"' if number == cl.paginator.num_pages else "")
    return format_html('<a href="{}"{}>{}</a> ', query, end, number)


@register.tag(name="bounded_date_hierarchy")
def bounded_date_hierarchy_tag(parser, token):
    """Django's ``date_hierarchy.html``, fed by ``DatabaseChangeList.date_hierarchy_context()``."""
    return InclusionAdminNode(
        parser,
        token,
        func=lambda cl: cl.date_hierarchy_context(),
        template_name="date_hierarchy.html",
        takes_context=False,
    )


def fast_result_list(cl):
    """Django's ``result_list`` context, its rows from ``admin_site.changelists.results.fast_results``."""
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": [*result_hidden_fields(cl), *state_fields(cl)],
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": fast_results(cl),
    }


def state_fields(cl):
    """Each ``list_editable`` row's state token (``admin_site.concurrency``): Django renders only the key."""
    forms = cl.formset.forms if cl.formset else ()
    return [form[STATE_FIELD] for form in forms if STATE_FIELD in form.fields]


@register.tag(name="fast_result_list")
def fast_result_list_tag(parser, token):
    """Django's ``change_list_results.html`` (or the admin's own override of it), rows rendered per column."""
    return InclusionAdminNode(
        parser, token, func=fast_result_list, template_name="change_list_results.html", takes_context=False
    )
