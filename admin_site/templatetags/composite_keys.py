"""Template filters and tags for composite-key pages (``admin_site.composite``): a row's key as URLs need it."""

from django import template
from django.contrib.admin.templatetags.admin_modify import submit_row

from admin_site.composite import key_text, url_key

register = template.Library()

register.filter("key_text", key_text)
register.filter("url_key", url_key)


@register.inclusion_tag("admin_site/composite/submit_line.html", takes_context=True)
def composite_submit_row(context):
    """Django's ``submit_row``, rendered with a delete link built from ``url_key``."""
    return submit_row(context).flatten()
