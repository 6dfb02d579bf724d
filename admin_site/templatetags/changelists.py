"""Template tags of the console's changelists: the date hierarchy that reads two dates, the fast result list."""

from django import template
from django.contrib.admin.templatetags.admin_list import result_headers, result_hidden_fields
from django.contrib.admin.templatetags.base import InclusionAdminNode

from admin_site.results import fast_results

register = template.Library()


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
    """Django's ``result_list`` context, its rows from ``admin_site.results.fast_results``."""
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": fast_results(cl),
    }


@register.tag(name="fast_result_list")
def fast_result_list_tag(parser, token):
    """Django's ``change_list_results.html`` (or the admin's own override of it), rows rendered per column."""
    return InclusionAdminNode(
        parser, token, func=fast_result_list, template_name="change_list_results.html", takes_context=False
    )
