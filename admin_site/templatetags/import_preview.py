"""The import preview's columns: a column no previewed row fills is left out, so the table fits a laptop."""

from django import template

register = template.Library()


def is_empty(value):
    return value is None or str(value).strip() == ""


@register.simple_tag
def preview_columns(headers, rows):
    """``(shown, hidden)``: the headers with a value in at least one of ``rows``, and the others."""
    rows = list(rows)
    shown, hidden = [], []
    for header in headers:
        filled = any(not is_empty(row.row_values.get(header)) for row in rows)
        (shown if filled else hidden).append(header)
    return shown, hidden
