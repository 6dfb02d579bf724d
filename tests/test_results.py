"""The changelist's rows as ``admin_site.changelists.results`` renders them are Django's rows, byte for byte.

Each test renders the same page twice, once with Django's ``items_for_result``
and once with ``fast_results``, and compares the table a user sees: every
registered list of every panel, with filters, search, sorting and popups in
the URL, and lists of callables, booleans, properties and empty values.
"""

import datetime
import re
import types
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters

from admin_site.changelists.main import DatabaseChangeList
from admin_site.changelists.results import _RowLink
from admin_site.sites import all_sites
from console.customers.models import Customer
from console.legacy.models import Custmast, Invoice
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import admin_url

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)
# Searches on MariaDB read a FULLTEXT index, which holds committed rows only.
search_db = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

RESULTS = re.compile(r'<div class="results">.*?</table>', re.S)


def both_tables(client, url, monkeypatch):
    """The results table of ``url`` as Django renders it and as ``fast_results`` does."""
    tables = {}
    for fast in (False, True):
        monkeypatch.setattr(DatabaseChangeList, "fast_results", fast)
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        match = RESULTS.search(response.content.decode())
        tables[fast] = match[0] if match else None
    return tables[False], tables[True]


def seed_everything():
    seeded = {alias: seed_customers(alias) for alias in ("customers",)}
    ann = seeded["customers"]["ann"]
    ann.notes = "   "  # blank: shown as the empty value
    ann.lifetime_value = Decimal("-0.00")
    ann.save(using="customers")
    shop = Custmast.objects.using("legacy").create(
        name="Shop & <Co>", city="Köln", country="DE", credit_limit=10, opened=datetime.date(2001, 5, 2), on_hold=True
    )
    Invoice.objects.using("legacy").create(
        customer=shop, invdate=datetime.date(2026, 1, 2), duedate=datetime.date(2026, 2, 1), amount=Decimal("5.5")
    )
    # An invoice whose customer row is gone (the legacy FK has no constraint): Django shows the empty value.
    Invoice.objects.using("legacy").create(
        customer_id=999_999, invdate=datetime.date(2026, 1, 3), duedate=datetime.date(2026, 2, 2), amount=1
    )
    return seeded


def registered_lists():
    for panel, site in all_sites().items():
        for model in site._registry:
            yield panel, model


def test_every_registered_list_renders_djangos_rows(root_client, monkeypatch):
    seed_everything()
    compared = 0
    for panel, model in registered_lists():
        django_html, fast_html = both_tables(root_client, admin_url(panel, model, "changelist"), monkeypatch)
        assert fast_html == django_html, (panel, model)
        compared += fast_html is not None and fast_html.count("<tr") > 1
    assert compared >= 8  # lists that have rows, so the comparison means something


@search_db
@pytest.mark.parametrize(
    "query",
    [
        {"status__exact": "active", "q": "ann"},
        {"o": "-3.1"},
        {"_popup": "1", "_to_field": "id"},
        {"country": "DE", "tier__exact": "standard", "o": "2"},
    ],
)
def test_filters_search_sorting_and_popups_render_djangos_rows(root_client, monkeypatch, query):
    seed_everything()
    url = admin_url("customers", Customer, "changelist", **query)
    django_html, fast_html = both_tables(root_client, url, monkeypatch)
    assert django_html and fast_html == django_html


@search_db
def test_callables_booleans_properties_links_and_empty_values_render_djangos_rows(root_client, monkeypatch):
    seed_everything()
    model_admin = all_sites()["customers"]._registry[Customer]

    @admin.display(boolean=True, description="VIP?")
    def is_vip(obj):
        return obj.tier == "vip"

    @admin.display(empty_value="(none)")
    def nothing(obj):
        return None

    def created_day(obj):
        return obj.created_at.date()

    monkeypatch.setattr(type(model_admin), "is_vip", staticmethod(is_vip), raising=False)
    columns = ["action_checkbox", "email", "name", "is_vip", nothing, created_day, "__str__", "notes", "tier",
               "lifetime_value", "created_at", lambda obj: f"<b>{obj.name}</b>", "id", "reference"]  # fmt: skip
    monkeypatch.setattr(model_admin, "list_display", columns)
    for links in (None, ["name", "tier"], []):
        monkeypatch.setattr(model_admin, "list_display_links", links)
        for query in ({}, {"q": "ann"}, {"_popup": "1"}):
            url = admin_url("customers", Customer, "changelist", **query)
            django_html, fast_html = both_tables(root_client, url, monkeypatch)
            assert django_html and fast_html == django_html, (links, query)
    assert "&lt;b&gt;" in fast_html  # a callable's text is escaped, not run as HTML


@pytest.mark.parametrize("key", [7, "plain", "a b", "x/y_z", "50%", "ü?&=#", "line\nbreak", "<tag>", ""])
def test_a_rows_link_is_djangos_for_any_key(root_client, key):
    seed_everything()
    response = root_client.get(admin_url("customers", Customer, "changelist", status__exact="active", q="a"))
    cl = response.context["cl"]
    link = _RowLink(cl)
    row = types.SimpleNamespace(**{cl.pk_attname: key})
    expected = None
    if str(key):
        expected = add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": cl.opts},
                                         cl.url_for_result(row))  # fmt: skip
    assert link.template is not None  # the page did take the one-reverse path
    assert link.url(row) == expected
    # Without a URL (an empty key) the cell is the text alone, still escaped.
    anchor = link.anchor(row, "<b>")
    assert anchor == ("&lt;b&gt;" if expected is None else f'<a href="{expected.replace("&", "&amp;")}">&lt;b&gt;</a>')
