"""Helpers for the console's tests: query capture per alias and panel walking."""

import re
from contextlib import ExitStack, contextmanager
from html.parser import HTMLParser

from django.apps import apps
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from admin_site.conf import panel_apps

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)


def panel_aliases():
    return list(settings.CONSOLE_DATABASES)


def console_alias():
    """The alias holding logins, sessions, content types and the admin log."""
    return panel_apps(settings.CONSOLE_DATABASES)["auth"][0]


def tables_of(alias):
    """Lower-cased table names of every model whose app ``alias`` holds."""
    labels = settings.CONSOLE_DATABASES[alias]["apps"]
    tables = set()
    for label in labels:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            tables.add(model._meta.db_table.lower())
    return tables


class QueryLog:
    """Queries captured on every panel connection, by alias."""

    def __init__(self, contexts):
        self._contexts = contexts

    def on(self, alias):
        return [q["sql"] for q in self._contexts[alias].captured_queries]

    def writes_on(self, alias):
        return [sql for sql in self.on(alias) if WRITE.match(sql)]

    def leaks_from(self, panel):
        """Queries a request to ``panel`` sent where they must not go.

        Another panel's alias must see nothing but the console's own tables
        (session, user, permissions, admin log); those are the only reason
        the console alias is touched by a request to another panel.
        """
        console = console_alias()
        panel_tables = tables_of(panel)
        leaks = []
        for alias in self._contexts:
            if alias == panel:
                continue
            for sql in self.on(alias):
                if alias != console:
                    leaks.append((alias, sql))
                elif panel != console and _mentions(sql, panel_tables):
                    leaks.append((alias, sql))
        return leaks


def _mentions(sql, tables):
    lowered = sql.lower()
    return any(re.search(rf"[`\"\s(.]{re.escape(table)}[`\"\s).,]", lowered) for table in tables)


@contextmanager
def capture_queries(aliases=None):
    """Capture the queries of every panel alias while the block runs."""
    aliases = aliases or panel_aliases()
    with ExitStack() as stack:
        contexts = {alias: stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in aliases}
        yield QueryLog(contexts)


def admin_url(panel, model, view, *args, **query):
    """Reverse ``<panel>:<app>_<model>_<view>``."""
    opts = model._meta
    url = reverse(f"{panel}:{opts.app_label}_{opts.model_name}_{view}", args=args)
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return url


def management_form(prefix, total=0, initial=0):
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


class _FormParser(HTMLParser):
    """Collect what a browser would submit from the page's form with id ``form_id``."""

    def __init__(self, form_id=None):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.in_form = form_id is None
        self.data = {}
        self._select = None
        self._textarea = None

    def _add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.form_id is not None:
            self.in_form = a.get("id") == self.form_id
        if not self.in_form or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file", "image"):
                return
            self._add(name, a.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select" and name:
            self._select = (name, "multiple" in a, [], [])
        elif tag == "option" and self._select is not None:
            self._select[3].append(a.get("value", ""))
            if "selected" in a:
                self._select[2].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.form_id is not None and self.in_form:
            self.in_form = False
        if tag == "select" and self._select is not None:
            name, multiple, chosen, options = self._select
            if not multiple and not chosen:
                chosen = options[:1]  # a browser submits the first option
            for value in chosen if multiple else chosen[-1:]:
                self._add(name, value)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self._add(name, text.removeprefix("\n"))
            self._textarea = None


def form_data(html, form_id=None):
    """The fields a browser would post from ``html`` (lists for repeated names)."""
    parser = _FormParser(form_id)
    parser.feed(html if isinstance(html, str) else html.decode())
    return parser.data


def export_file(client, panel, model, file_format="0", **extra):
    """Post the export form as a browser would (every field ticked) and return the response."""
    url = admin_url(panel, model, "export")
    page = client.get(url)
    if page.status_code != 200:
        return page
    data = {k: v for k, v in form_data(page.content).items() if k != "csrfmiddlewaretoken"}
    data.update({"format": file_format, **extra})
    return client.post(url, data)
