"""A changelist page with the console's quicker rendering is Django's page, byte for byte.

The query strings encoded once per page and the date hierarchy read from the
first and last date must change nothing a user sees (the latter where every
year, month or day between them has rows and the list's own dates are read):
each test renders the same page with them and without them and compares the
whole HTML (the CSRF token aside, which is new on every render).  The rows are
compared in ``tests/test_results.py``; the filters and the sidebar are Django's
own templates.
"""

import random
import re

import pytest
from django.contrib.admin.views.main import ChangeList

from admin_site.changelists.main import DatabaseChangeList
from console.customers.models import Address, Customer, Order
from tests.conftest import ALL_DATABASES
from tests.test_access import make_staff
from tests.test_results import registered_lists, seed_everything
from tests.utils import admin_url

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)
search_db = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

CSRF = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+"')
SIDEBAR = re.compile(r'<nav class="sticky" id="nav-sidebar".*?</nav>', re.S)


def html(response):
    assert response.status_code == 200, response.status_code
    return CSRF.sub(r'\1"', response.content.decode())


def plain_and_quick(client, url, monkeypatch, dates=False):
    """``url`` rendered with Django's query strings (and with ``dates``, its date hierarchy), then the console's."""
    monkeypatch.setattr(DatabaseChangeList, "get_query_string", ChangeList.get_query_string)
    if dates:
        monkeypatch.setattr(DatabaseChangeList, "bounded_dates", False)
    plain = html(client.get(url))
    monkeypatch.undo()
    return plain, html(client.get(url))


def test_every_registered_list_is_djangos_page(root_client, monkeypatch):
    seed_everything()
    for panel, model in registered_lists():
        plain, quick = plain_and_quick(root_client, admin_url(panel, model, "changelist"), monkeypatch, dates=True)
        assert quick == plain, (panel, model)


@search_db
@pytest.mark.parametrize(
    ("model", "query"),
    [
        (Customer, {"status__exact": "active", "q": "ann"}),
        (Customer, {"country": "DE", "tier__exact": "standard", "o": "2"}),
        (Customer, {"addresses__city": "Berlin", "created_at__year": "2026"}),
        (Customer, {"tags__id__exact": "1", "p": "1"}),
        (Customer, {"country__in": "DE,FR", "e": "1"}),
        (Customer, {"_popup": "1", "_to_field": "id"}),
        (Customer, {"q": 'ünï "cödé" & <b>', "status__exact": "x&y=z"}),
        (Address, {"kind__exact": "billing", "country": "DE", "q": "Haupt"}),
        (Order, {"status__exact": "open", "customer__country": "DE"}),
        (Order, {"placed_on__year": "2026", "placed_on__month": "3"}),
    ],
)
def test_filtered_searched_and_sorted_lists_are_djangos_page(root_client, monkeypatch, model, query):
    seed_everything()
    url = admin_url("customers", model, "changelist", **query)
    plain, quick = plain_and_quick(root_client, url, monkeypatch)
    assert quick == plain
    assert 'class="selected"' in quick


def test_a_filter_with_a_template_of_its_own_keeps_it(root_client, monkeypatch):
    seeded = seed_everything()
    url = admin_url("customers", Order, "changelist", customer__id__exact=seeded["customers"]["ann"].pk)
    plain, quick = plain_and_quick(root_client, url, monkeypatch)
    assert quick == plain and 'class="related-id-filter"' in quick  # RelatedIdFieldListFilter's own template


def test_each_user_and_each_list_gets_its_own_page_and_no_sidebar(client, monkeypatch):
    """What a list offers follows permissions, never another user's page; the panels have no left sidebar.

    (The sidebar was dropped so lists fit 1280 px: ``enable_nav_sidebar = False``, tests/test_layout_browser.py.)
    """
    seed_everything()
    access = ("admin_site.access_customers", "customers.view_customer")
    users = {
        "viewer": make_staff("viewer", *access),
        "adder": make_staff("adder", *access, "customers.add_customer"),  # an "Add" link more
        "clerk": make_staff("clerk", *access, "customers.add_order", "customers.change_order"),  # a list more
    }
    pages = {}
    for name, user in users.items():
        client.force_login(user)
        for model in (Customer, Order) if name == "clerk" else (Customer,):
            plain, quick = plain_and_quick(client, admin_url("customers", model, "changelist"), monkeypatch)
            assert quick == plain, (name, model)
            assert not SIDEBAR.search(quick) and 'id="toggle-nav-sidebar"' not in quick
            pages[name, model] = quick
    add_customer = admin_url("customers", Customer, "add")
    assert f'href="{add_customer}"' not in pages["viewer", Customer]
    assert f'href="{add_customer}"' in pages["adder", Customer]
    assert f'href="{admin_url("customers", Order, "add")}"' in pages["clerk", Order]


def test_query_strings_are_djangos(root_client):
    """Any parameters, added or removed: the same string as Django's ``ChangeList.get_query_string``."""
    seed_everything()
    query = {"status__exact": "active", "country__in": "DE,FR", "q": "a b&c", "o": "2.-1", "tags__id__exact": "1"}
    cl = root_client.get(admin_url("customers", Customer, "changelist", **query)).context["cl"]
    rng = random.Random(8)
    names = [*query, "p", "e", "addresses__city", "ä ö", "x=y&z", "created_at__year"]
    values = ["", "1", 7, "Lyon", "a b", "ü&=?#", ["1", "2"], [], ["x y"], None]
    for _ in range(2000):
        new = {rng.choice(names): rng.choice(values) for _ in range(rng.randint(0, 3))}
        remove = rng.sample(names + ["status", "tags__", "addresses"], rng.randint(0, 2))
        for args in ((new, remove), (new, None), (None, remove), (None, None)):
            assert cl.get_query_string(*args) == ChangeList.get_query_string(cl, *args), args
