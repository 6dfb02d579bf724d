"""No crafted query string or form value gets a 5xx from an admin view.

Every registered ModelAdmin of every panel is asked for its changelist with
each hostile value put, one at a time, into every parameter the page itself
reads (search, ordering, page, cursor, popup, every list filter's and the date
hierarchy's parameters) and into lookups on its own columns, which Django
allows; then its change, history and delete views with hostile object ids,
the autocomplete view and the import confirm.  A bad value
may be refused (400), redirected (``?e=1``, as Django answers bad lookups) or
ignored, never answered with a server error.  Each test gathers every failing
request and names them all.
"""

import base64
import json

import pytest
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import (
    ALL_VAR,
    ERROR_FLAG,
    IS_FACETS_VAR,
    IS_POPUP_VAR,
    ORDER_VAR,
    PAGE_VAR,
    SEARCH_VAR,
    TO_FIELD_VAR,
)
from django.urls import NoReverseMatch, reverse

from admin_site.changelists import counts
from admin_site.changelists.paginator import CURSOR_VAR, make_cursor
from admin_site.models import TransferRecord
from admin_site.options import DatabaseAdminMixin
from admin_site.sites import all_sites
from console.customers.models import Address, BusinessCustomer, Customer, Order
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url, form_data
from tests.walk import seed_panel

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

BIG = "99999999999999999999999"
HOSTILE = [
    '["a",[Infinity]]',
    "1e400",
    "-1",
    BIG,
    "-" + BIG,
    "NaN",
    "Infinity",
    "%00",
    "\x00",
    "x" * 10_000,
    "[]",
    "{}",
    "null",
    "' OR 1=1 --",
    "../..",
    "ü😀",
    "",
]

#: Dates at the calendar's ends: Django's date hierarchy steps past them to bound a year, month or day.
CALENDAR_EDGES = ["0", "1", "9999", "12", "13", "31", "32"]

#: JSON values a cursor's keys (and its skip) are replaced with: numbers no column holds, and wrong types.
HOSTILE_JSON = [
    "Infinity",
    "-Infinity",
    "NaN",
    "1e400",
    "-1e400",
    BIG,
    "-" + BIG,
    "-1",
    "1.5",
    "[]",
    "{}",
    "null",
    "true",
    '"\\u0000"',
    '"9999-12-31T23:59:59"',
    '"99999-01-01"',
    '"ü😀"',
    json.dumps("x" * 10_000),
]


def encoded(text):
    """A cursor as ``make_cursor`` writes it, around any JSON text."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def registered(panel):
    return list(all_sites()[panel]._registry.items())


def hostile_client(client):
    """The test client answering an exception with a 500 page instead of raising it."""
    client.raise_request_exception = False
    return client


class Requests:
    """GET or POST each request, remembering every one answered with a 5xx."""

    def __init__(self, client):
        self.client = hostile_client(client)
        self.failures = []
        self.made = 0

    def get(self, url, data=None):
        return self._check("get", url, data)

    def post(self, url, data=None):
        return self._check("post", url, data)

    def _check(self, method, url, data):
        response = getattr(self.client, method)(url, data)
        self.made += 1
        if response.status_code >= 500:
            shown = {name: _short(value) for name, value in (data or {}).items()}
            self.failures.append(f"{method.upper()} {url[:120]} {shown} -> {response.status_code}")
        return response

    def assert_none_failed(self):
        assert self.made
        report = "\n".join(self.failures[:60])
        assert not self.failures, f"{len(self.failures)} of {self.made} requests got a 5xx:\n{report}"


def _short(value):
    value = str(value)
    return value if len(value) < 60 else f"{value[:20]}…({len(value)} chars)"


def page_parameters(cl, model_admin):
    """Every query parameter the changelist ``cl`` reads."""
    names = [SEARCH_VAR, ORDER_VAR, PAGE_VAR, CURSOR_VAR, ERROR_FLAG, IS_POPUP_VAR, TO_FIELD_VAR]
    names += [ALL_VAR, IS_FACETS_VAR]
    for spec in cl.filter_specs:
        names += spec.expected_parameters()
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    return names


def hostile_queries(cl, model_admin):
    """Each hostile value alone in each parameter, cursors that decode, a date hierarchy's month and day."""
    for name in page_parameters(cl, model_admin):
        for value in HOSTILE:
            yield {name: value}
    for cursor in hostile_cursors(cl):
        yield {CURSOR_VAR: cursor}
    if model_admin.date_hierarchy:
        year, month, day = (f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day"))
        for value in [*HOSTILE, *CALENDAR_EDGES]:
            yield {year: "2026", month: value}
            yield {year: "2026", month: "3", day: value}
            yield {year: value, month: "3", day: "1"}


def hostile_cursors(cl):
    """Cursors that decode, holding keys no row has, wrong types, or a skip past any page."""
    keys = getattr(cl, "keys", None)
    if not keys:
        return
    for value in HOSTILE_JSON:
        for direction in "ab":
            yield encoded(f'["{direction}",[{",".join([value] * len(keys))}]]')
    rows = list(cl.result_list)
    if not rows:
        return
    real = json.loads(base64.urlsafe_b64decode(make_cursor(keys, rows[0], True) + "=="))[1]
    for value in HOSTILE_JSON:
        for direction in "ab":
            yield encoded(f'["{direction}",{json.dumps(real)},{value}]')


def walk_changelists(requests, panel, queries):
    """GET each registered changelist of ``panel`` with each of ``queries(changelist, model_admin)``."""
    for model, model_admin in registered(panel):
        url = admin_url(panel, model, "changelist")
        response = requests.get(url)
        assert response.status_code == 200, url
        for query in queries(response.context["cl"], model_admin):
            requests.get(url, query)


def page_and_cursor_queries(cl, model_admin):
    """Hostile cursors on the next page, and hostile page numbers alone, with a bad cursor and with a good one."""
    for cursor in hostile_cursors(cl):
        yield {PAGE_VAR: "2", CURSOR_VAR: cursor}
    rows, keys = list(cl.result_list), getattr(cl, "keys", None)
    cursors = ["", HOSTILE[0], *([make_cursor(keys, rows[-1], True)] if keys and rows else [])]
    for page in ("2", "3", BIG, str(2**63), str(2**62), "-1", "0", "1e400"):
        yield {PAGE_VAR: page}
        for cursor in cursors:
            yield {PAGE_VAR: page, CURSOR_VAR: cursor}


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_changelist_parameters_never_500(client, superuser, panel):
    seed_panel(panel)
    client.force_login(superuser)
    requests = Requests(client)
    walk_changelists(requests, panel, hostile_queries)
    requests.assert_none_failed()


#: Values for the lookups Django lets a query string make on a list's own columns (``lookup_allowed``).
LOOKUP_VALUES = [BIG, f"1,-{BIG}", "1e400", "NaN", "99999-01-01", "\x00"]


def column_lookups(cl, model_admin):
    """Lookups on one column of each kind the model has: exact, ``__in``, ``__range``, ``__gt``, ``__year``."""
    kinds = {}
    for field in model_admin.model._meta.concrete_fields:
        kinds.setdefault(field.get_internal_type(), field)
    for field in kinds.values():
        lookups = ["", "__in", "__range", "__gt"]
        if field.get_internal_type() in ("DateField", "DateTimeField"):
            lookups.append("__year")
        for lookup in lookups:
            for value in LOOKUP_VALUES:
                yield {f"{field.name}{lookup}": value}


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_lookups_on_the_lists_columns_never_500(client, superuser, panel):
    """Django lets a query string filter a list by any of its own columns, with any lookup."""
    seed_panel(panel)
    client.force_login(superuser)
    requests = Requests(client)
    walk_changelists(requests, panel, column_lookups)
    requests.assert_none_failed()


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_pages_and_cursors_past_an_inexact_count_never_500(client, superuser, monkeypatch, panel):
    """With every count inexact, a page number is not checked against a count: it must still be bounded."""
    monkeypatch.setattr(DatabaseAdminMixin, "exact_count_max", 1)
    seed_panel(panel)
    client.force_login(superuser)
    requests = Requests(client)
    walk_changelists(requests, panel, page_and_cursor_queries)
    requests.assert_none_failed()


# -- what a bad value gets ---------------------------------------------------------


def test_a_cursor_that_is_not_one_is_ignored_and_the_page_read_by_its_number(root_client):
    """As Django reads a ``?p=`` it cannot parse as page 1: a cursor only makes a page quicker to reach."""
    seed_panel("customers")
    url = admin_url("customers", Customer, "changelist")
    plain = [row.pk for row in root_client.get(url).context["cl"].result_list]
    bad = [
        encoded('["a",[Infinity]]'),
        encoded('["a",[1e400]]'),
        encoded(f'["a",[{BIG}]]'),
        encoded('["a",[null]]'),
        encoded(f'["a",["Ann Archer"],{BIG}]'),
        encoded('["a",["Ann Archer"],1000000]'),  # more rows passed over than any numbered link does
        '["a",[Infinity]]',
        "1e400",
    ]
    for cursor in bad:
        response = root_client.get(url, {CURSOR_VAR: cursor})
        assert response.status_code == 200, cursor
        assert [row.pk for row in response.context["cl"].result_list] == plain, cursor


def test_a_page_number_past_any_offset_is_past_the_end(root_client, monkeypatch):
    """Past an inexact count a page number is not checked against a count; past 64 bits it is past the end."""
    monkeypatch.setattr(all_sites()["customers"]._registry[Customer], "exact_count_max", 1)
    seed_panel("customers")
    url = admin_url("customers", Customer, "changelist")
    first = root_client.get(url).context["cl"]
    cursor = make_cursor(first.keys, list(first.result_list)[-1], True)
    assert root_client.get(url, {PAGE_VAR: str(10**12)}).status_code == 200  # an empty page past the rows
    for query in ({PAGE_VAR: BIG}, {PAGE_VAR: str(2**63 // 50 + 1)}, {PAGE_VAR: BIG, CURSOR_VAR: cursor}):
        response = root_client.get(url, query)
        assert response.status_code == 302 and response["Location"].endswith(f"?{ERROR_FLAG}=1"), query


def test_a_page_past_the_rows_of_a_list_counted_more_than_n_is_empty_not_an_error(root_client, monkeypatch):
    """An empty page proves no rows before it: the count stays "more than N", and its page range holds."""
    monkeypatch.setattr(all_sites()["customers"]._registry[Customer], "exact_count_max", 1)
    monkeypatch.setattr(counts, "table_estimate", lambda queryset: None)  # counted, not estimated
    seed_panel("customers")
    response = root_client.get(admin_url("customers", Customer, "changelist"), {PAGE_VAR: "3"})
    assert response.status_code == 200
    assert response.context["cl"].row_count.kind == "at least"
    assert "This page is past the last row" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"created_at__year": "99999999999"},
        {"created_at__year": f"-{BIG}"},
        {"created_at__year": "9999"},  # Django bounds a year by the next one: 10000
        {"created_at__year": "9999", "created_at__month": "12"},
        {"created_at__year": "9999", "created_at__month": "12", "created_at__day": "31"},
        {"created_at__year": "2026", "created_at__month": BIG},
    ],
)
def test_a_date_hierarchy_past_the_calendar_is_a_bad_lookup(root_client, query):
    """Redirected to ``?e=1``, as Django answers a month 13."""
    response = root_client.get(admin_url("customers", Customer, "changelist"), query)
    assert response.status_code == 302 and response["Location"].endswith(f"?{ERROR_FLAG}=1")


@pytest.mark.parametrize("model", [Order, Address])
@pytest.mark.parametrize("key", [BIG, f"-{BIG}", str(2**63), "abc", "1e400"])
def test_a_related_key_no_row_can_have_is_a_bad_lookup(root_client, model, key):
    """The key filters (``RelatedIdFieldListFilter``) answer a key past the column as Django answers "abc"."""
    seed_panel("customers")
    response = root_client.get(admin_url("customers", model, "changelist"), {"customer__id__exact": key})
    assert response.status_code == 302 and response["Location"].endswith(f"?{ERROR_FLAG}=1")


@pytest.mark.parametrize(
    "panel,model,query",
    [
        ("customers", Order, {"customer": BIG}),
        ("customers", Order, {"customer__in": f"1,{BIG}"}),
        ("customers", Order, {"customer__gt": f"-{BIG}"}),
        ("customers", Order, {"id__in": BIG}),
        ("customers", Order, {"placed_on__year__gt": BIG}),
        ("customers", Order, {"number__range": "abc"}),
        ("users", TransferRecord, {"duration__gt": "1e400"}),
        ("users", TransferRecord, {"duration": "NaN"}),
    ],
)
def test_a_lookup_of_the_query_string_that_cannot_be_read_is_a_bad_lookup(root_client, panel, model, query):
    """Lookups that build but fail as the SQL is compiled or bound: ``?e=1``, as for a lookup that does not build."""
    seed_panel(panel)
    response = root_client.get(admin_url(panel, model, "changelist"), query)
    assert response.status_code == 302 and response["Location"].endswith(f"?{ERROR_FLAG}=1")


@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_an_object_id_past_64_bits_names_no_row(root_client, view):
    """A business customer's key is a relation (``customer_ptr``): Django checks no range before SQLite binds it."""
    seed_panel("customers")
    response = root_client.get(admin_url("customers", BusinessCustomer, view, BIG))
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:index")


# -- every view, every parameter -------------------------------------------------------


def object_urls(panel, model, object_id):
    for view in ("change", "history", "delete"):
        try:
            yield admin_url(panel, model, view, quote(object_id))
        except NoReverseMatch:
            pass


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_object_views_with_hostile_ids_never_500(client, superuser, panel):
    seed_panel(panel)
    client.force_login(superuser)
    requests = Requests(client)
    for model, _model_admin in registered(panel):
        for object_id in HOSTILE:
            for url in object_urls(panel, model, object_id):
                requests.get(url)
    requests.assert_none_failed()


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_autocomplete_parameters_never_500(client, superuser, panel):
    seed_panel(panel)
    client.force_login(superuser)
    requests = Requests(client)
    url = reverse(f"{panel}:autocomplete")
    for model, model_admin in registered(panel):
        fields = (
            list(model_admin.autocomplete_fields)
            or [field.name for field in model._meta.get_fields() if field.is_relation and field.concrete][:1]
        )
        for field_name in fields:
            valid = {
                "app_label": model._meta.app_label,
                "model_name": model._meta.model_name,
                "field_name": field_name,
                "term": "a",
                "page": "1",
            }
            requests.get(url, valid)
            for name in valid:
                for value in HOSTILE:
                    requests.get(url, {**valid, name: value})
    requests.assert_none_failed()


# -- the import confirm (admin_site/transfers/options.py: another change owns its fixes) ----------

CONFIRM_VALUES = {
    "format": ["99", "abc", "-5", "-1", "1e400"],
    "resource": ["1", "99", "abc"],
    "import_file_name": [".", "..", "/etc/passwd", "../x", ""],
}


def previewed_confirm(client, panel):
    """The confirm form's fields from a real preview of one new customer."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    csv = b"name,email,country,status,tier\nZed Zimmer,zed@example.com,DE,active,gold\n"
    preview = client.post(
        admin_url(panel, Customer, "import"),
        {"format": "0", "import_file": SimpleUploadedFile("customers.csv", csv)},
    )
    fields = form_data(preview.content)
    data = {k: fields[k][0] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert "import_file_name" in data, "the preview offered no confirm form"
    return data


def confirm_bases(client, panel):
    """(model, fields) for each importable model: a real preview's for customers, made-up ones otherwise."""
    made_up = {"format": "0", "resource": "0", "import_file_name": "0" * 32, "original_file_name": "x.csv"}
    for model, model_admin in registered(panel):
        if not hasattr(model_admin, "process_import"):
            continue
        yield model, made_up
        if model is Customer:
            yield model, previewed_confirm(client, panel)


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_import_confirm_parameters_never_500(client, superuser, panel):
    """POST ``process_import/`` with each hostile ``format``, ``resource`` and ``import_file_name``."""
    seed_panel(panel)
    client.force_login(superuser)
    requests = Requests(client)
    for model, base in list(confirm_bases(client, panel)):
        try:
            url = admin_url(panel, model, "process_import")
        except NoReverseMatch:
            continue  # a model its admin offers no import for (a table without a key)
        for name, values in CONFIRM_VALUES.items():
            for value in values:
                requests.post(url, {**base, name: value})
    requests.assert_none_failed()


@pytest.mark.parametrize("query", ["foo=1", "format=0", "id__gte=1e400", "created_at__year=99999999999"])
def test_an_export_address_with_a_filter_the_list_refuses_is_a_bad_request(root_client, query):
    from console.customers.models import Customer
    from tests.utils import admin_url

    url = admin_url("customers", Customer, "export") + "?" + query
    assert root_client.get(url).status_code == 400
    assert root_client.post(url, {"format": "0"}).status_code == 400


@pytest.mark.parametrize("panel", ALL_DATABASES)
def test_export_of_selected_rows_with_hostile_keys_never_500(client, superuser, panel):
    """The "Export selected" form posts ``export_items``: a key no row can have is refused, never a 500."""
    seed_panel(panel)
    client.force_login(superuser)
    requests = Requests(client)
    for model, _model_admin in registered(panel):
        try:
            url = admin_url(panel, model, "export")
        except NoReverseMatch:
            continue
        for value in ["abc", "", "1.5", BIG, "-" + BIG, *HOSTILE]:
            requests.post(url, {"format": "0", "resource": "0", "export_items": value})
    requests.assert_none_failed()


def test_export_of_selected_rows_exports_only_those_and_refuses_a_key_that_is_none(root_client):
    first, second = (
        Customer.objects.using("customers").create(name=f"Sel {i}", email=f"sel{i}@example.com", country="DE")
        for i in range(2)
    )
    url = admin_url("customers", Customer, "export")
    fields = {"format": "0", "resource": "0", "customerresource_email": "on"}
    response = root_client.post(url, {**fields, "export_items": [second.pk]})
    assert response.status_code == 200, response.context["form"].errors if response.context else response
    body = b"".join(response.streaming_content).decode()
    assert "sel1@example.com" in body and "sel0@example.com" not in body
    assert root_client.post(url, {**fields, "export_items": ["abc"]}).status_code == 400
