"""The changelist's rows with each column settled once per page, in Django's HTML.

Django's ``items_for_result`` works out every cell from scratch: it looks the
column's field up again, asks the ModelAdmin for its empty value, reverses the
row's change URL and resolves it once more to add the preserved filters, and
builds each cell with ``format_html``.  ``fast_results`` settles per column what
does not change from row to row (the field, the classes, the link), builds one
change URL and fills in each row's key, and remembers a column's rendered cell
per distinct value (a status, a country, an amount) within the page.  The HTML
is Django's, byte for byte (``tests/test_results.py`` compares the two).

Lists with ``list_editable`` (a form per row) keep Django's ``results``.
"""

import datetime
from urllib.parse import quote as url_quote

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.templatetags.admin_list import ResultList, results
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import (
    FieldIsAForeignKeyColumnName,
    display_for_field,
    display_for_value,
    lookup_field,
    quote,
)
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.urls import NoReverseMatch
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from admin_site.adapters.django import column_css_name, list_display_field
from admin_site.composite import key_text

#: A key no real row has: reversed once, then replaced by each row's key.
_KEY = "console-row-key-7f3a"
#: Values whose rendered cell can be remembered for the rest of the page.
#: Not floats or Decimals: 0.0 == -0.0 (and Decimal("0") == Decimal("-0")) but they print differently.
_MEMO_TYPES = (str, int, bool, type(None), datetime.date, datetime.datetime, datetime.time)
_NOWRAP_FIELDS = (models.DateField, models.TimeField, models.ForeignKey)
#: What ``reverse`` leaves unquoted in a path: RFC 3986's sub-delimiters and "/~:@".
PATH_SAFE = "!$&'()*+,;=" + "/~:@"


def _field_classes(css, field):
    """A field column's classes, as ``items_for_result`` gives them: dates, times and FKs do not wrap."""
    return css + " nowrap" if isinstance(field, _NOWRAP_FIELDS) else css


def fast_results(cl):
    """Django's ``results(cl)``, computed per column; each row's cells come joined, as one item.

    ``change_list_results.html`` writes a row as ``{% for item in result %}{{ item }}{% endfor %}``:
    one item per row renders the same HTML without a template loop over every cell.
    """
    if cl.formset:
        return list(results(cl))
    link = _RowLink(cl)
    columns = [_column(cl, index, name, link) for index, name in enumerate(cl.list_display)]
    _mark_links(cl, columns)
    rows = []
    for result in cl.result_list:
        rows.append(ResultList(None, [SafeString("".join([column.cell(result) for column in columns]))]))
    return rows


def _column(cl, index, name, link):
    """The column for ``name``: the console's action checkbox has a quicker one of its own."""
    if name == "action_checkbox" and _is_console_checkbox(cl.model_admin):
        return _CheckboxColumn(cl, index, name, link)
    return _Column(cl, index, name, link)


def _is_console_checkbox(model_admin):
    from admin_site.options import DatabaseAdminMixin

    return type(model_admin).action_checkbox is DatabaseAdminMixin.action_checkbox


def _mark_links(cl, columns):
    """Which columns link to the row, and which one is the row's ``<th>`` (Django's ``link_in_col``)."""
    first = True
    for index, column in enumerate(columns):
        if cl.list_display_links is None:
            linked = False
        elif index == 0 and not cl.list_display_links:
            linked = True
        else:
            linked = column.name in cl.list_display_links
        column.linked = linked
        column.tag = ("th" if first else "td") if linked else "td"
        if linked:
            first = False


class _RowLink:
    """The row's change URL with the preserved filters: one ``reverse`` and one ``resolve`` per page."""

    def __init__(self, cl):
        self.cl = cl
        self.pk = cl.to_field or cl.lookup_opts.pk.attname
        self.template = None
        # A changelist that builds its own row URLs keeps doing so, row by row.
        if type(cl).url_for_result is ChangeList.url_for_result:
            try:
                url = self._preserved(cl.url_for_result(_Keyed(cl.pk_attname)))
            except NoReverseMatch:
                url = None
            if url is not None and url.count(_KEY) == 1:
                self.template = url.split(_KEY)

    def _preserved(self, url):
        return add_preserved_filters({"preserved_filters": self.cl.preserved_filters, "opts": self.cl.opts}, url)

    def url(self, result):
        """The row's URL, or None where Django's ``reverse`` finds none."""
        if self.template is None:
            try:
                return self._preserved(self.cl.url_for_result(result))
            except NoReverseMatch:
                return None
        key = str(quote(getattr(result, self.cl.pk_attname)))
        if not key:  # the change URL's path converter needs at least one character
            return None
        before, after = self.template
        return before + url_quote(key, safe=PATH_SAFE) + after

    def anchor(self, result, text):
        """``<a href="...">text</a>`` to the row's change page, escaped as ``format_html`` would."""
        url = self.url(result)
        if url is None:
            return conditional_escape(text)
        popup = ""
        if self.cl.is_popup:
            popup = f' data-popup-opener="{conditional_escape(result.serializable_value(self.pk))}"'
        return f'<a href="{conditional_escape(url)}"{popup}>{conditional_escape(text)}</a>'


class _Keyed:
    """Stands in for a row in ``url_for_result``: only its key is read."""

    def __init__(self, attname):
        setattr(self, attname, _KEY)


class _Column:
    """One ``list_display`` entry: what Django's ``items_for_result`` settles anew for every cell."""

    def __init__(self, cl, index, name, link):
        self.name = name
        self.link = link
        self.model_admin = cl.model_admin
        self.empty = cl.model_admin.get_empty_value_display()
        self.css = "action-checkbox" if name == "action_checkbox" else f"field-{column_css_name(name, index)}"
        self.linked, self.tag = False, "td"
        self.memo = {}
        try:
            field = list_display_field(cl.lookup_opts, name)
        except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
            field = None
        # A concrete field is read straight off the row; anything else (a callable, a ModelAdmin
        # method, a property, the automatic pk) goes through Django's own lookup, cell by cell.
        self.field = None if field is None or field.auto_created else field
        if self.field is not None:
            self.field_css = _field_classes(self.css, field)
            self.related = isinstance(field.remote_field, models.ManyToOneRel)

    def cell(self, result):
        if self.field is not None and not self.linked:
            return self._memo_cell(result)
        try:
            if self.field is not None:
                html, css = self._field_html(result, getattr(result, self.name)), self.field_css
            else:
                html, css = self._value_html(*lookup_field(self.name, result, self.model_admin))
        except ObjectDoesNotExist:
            html, css = self.empty, self.css
        if self.linked:
            return SafeString(f'<{self.tag} class="{css}">{self.link.anchor(result, html)}</{self.tag}>')
        return SafeString(f'<td class="{css}">{conditional_escape(html)}</td>')

    def _memo_cell(self, result):
        """A plain field's cell, remembered per value: display_for_field depends on the value alone."""
        try:
            value = getattr(result, self.name)
        except ObjectDoesNotExist:
            return SafeString(f'<td class="{self.css}">{conditional_escape(self.empty)}</td>')
        key = (type(value), value) if type(value) in _MEMO_TYPES and not self.related else None
        if key is not None:
            cell = self.memo.get(key)
            if cell is not None:
                return cell
        cell = SafeString(f'<td class="{self.field_css}">{conditional_escape(self._field_html(result, value))}</td>')
        if key is not None:
            self.memo[key] = cell
        return cell

    def _field_html(self, result, value):
        if isinstance(value, str) and value.strip() == "":
            value = ""
        if self.related:
            related = getattr(result, self.field.name)
            return self.empty if related is None else related
        return display_for_field(value, self.field, self.empty, avoid_link=self.linked)

    def _value_html(self, field, attr, value):
        """Django's rendering of what ``lookup_field`` found: ``(html, css classes)``."""
        empty = getattr(attr, "empty_value_display", self.empty)
        if isinstance(value, str) and value.strip() == "":
            value = ""
        if field is None or field.auto_created:
            boolean = getattr(attr, "boolean", False)
            if isinstance(attr, property) and hasattr(attr, "fget"):
                boolean = getattr(attr.fget, "boolean", False)
            css = self.css + " nowrap" if isinstance(value, (datetime.date, datetime.time)) else self.css
            return display_for_value(value, empty, boolean), css
        return display_for_field(value, field, empty, avoid_link=self.linked), _field_classes(self.css, field)


class _CheckboxColumn(_Column):
    """``DatabaseAdminMixin.action_checkbox``'s cell with its label translated once per page, not per row."""

    def __init__(self, cl, index, name, link):
        super().__init__(cl, index, name, link)
        self.label = _("Select this object for an action - {}")

    def cell(self, result):
        if self.linked:
            return super().cell(result)
        return SafeString(f'<td class="action-checkbox">{action_checkbox_html(result, self.label)}</td>')


def action_checkbox_html(obj, label):
    """The action checkbox of row ``obj``, ``label`` (translated, ``{}`` for the row's text) as its aria-label.

    ``format_html(label, str(obj))``: the label as it is, the row's text escaped.
    """
    label = label.format(conditional_escape(str(obj)))
    return SafeString(
        f'<input type="checkbox" name="{ACTION_CHECKBOX_NAME}" value="{conditional_escape(key_text(obj))}" '
        f'class="action-select" aria-label="{label}">'
    )
