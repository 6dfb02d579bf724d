"""Template tags of the console's changelists: the date hierarchy that reads two dates."""

from django import template
from django.contrib.admin.templatetags.base import InclusionAdminNode

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
