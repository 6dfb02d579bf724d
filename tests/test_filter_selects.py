"""Filters of many values are one select, so the filter column stays short; a few values stay links.

The option values are the same links Django lists: choosing one shows only that value's rows.
"""

import datetime
import html
import re

import pytest

from console.customers.models import Address, Customer
from console.legacy.models import Custmast
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

CITIES = [f"City {i:02d}" for i in range(20)]


def select_options(content, css_class):
    """(value, label) of each option of the first ``<select class=css_class>`` outside ``<noscript>``."""
    text = re.sub(r"<noscript>.*?</noscript>", "", content.decode(), flags=re.S)
    match = re.search(rf'<select class="{css_class}"[^>]*>(.*?)</select>', text, re.S)
    assert match, f"no select.{css_class} on the page"
    return [
        (html.unescape(value), label.strip())
        for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', match.group(1))
    ]


def customers_in(cities):
    for i, city in enumerate(cities):
        customer = Customer(name=f"Person {i}", email=f"p{i}@example.com", country="DE")
        customer.save(using="customers")
        Address(customer=customer, line1=f"{i} Main St", city=city, postcode="10115", country="DE").save(
            using="customers"
        )


def test_a_filter_of_20_cities_is_a_select_whose_options_show_that_citys_customers(root_client):
    customers_in(CITIES)
    response = root_client.get(url())
    options = dict((label, value) for value, label in select_options(response.content, "filter-select"))
    assert set(CITIES) <= set(options) and "All" in options
    chosen = root_client.get(url() + options["City 07"])
    assert chosen.status_code == 200
    assert [c.name for c in chosen.context["cl"].result_list] == ["Person 7"]
    # A filter of few values (status) stays Django's list of links.
    assert 'data-filter-title="status"' in response.content.decode()
    assert re.search(r'data-filter-title="status".*?<ul>', response.content.decode(), re.S)


def url():
    return admin_url("customers", Customer, "changelist")


def test_few_cities_stay_links(root_client):
    customers_in(CITIES[:3])
    content = root_client.get(url()).content.decode()
    assert 'class="filter-select"' not in content
    assert "?addresses__city=City+01" in content or "addresses__city=City%2001" in content


def test_a_date_hierarchy_of_32_years_is_a_select_that_goes_to_the_year(root_client):
    from console.legacy.demo import load

    load(using="legacy", customers=40)
    dates = Custmast.objects.using("legacy").exclude(opened=None).values_list("opened", flat=True)
    first, last = min(dates).year, max(dates).year
    assert last - first + 1 > 15, "the demo's span is too short to test this"
    response = root_client.get(admin_url("legacy", Custmast, "changelist"))
    options = select_options(response.content, "date-hierarchy-select")
    years = [label for value, label in options if value]
    assert years == [str(year) for year in range(first, last + 1)]
    link = dict((label, value) for value, label in options)[str(last)]
    listed = root_client.get(admin_url("legacy", Custmast, "changelist") + link).context["cl"].result_list
    assert listed and {row.opened.year for row in listed} == {last}
    assert all(isinstance(row.opened, datetime.date) for row in listed)


COUNTRIES = ["AT", "BE", "CH", "CZ", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "NL", "NO", "PL", "PT", "SE"]


def test_a_plain_list_filter_of_17_countries_is_a_select_too(root_client):
    """``list_filter = ["country"]`` (a field name, no filter class) gets the select as the city filter does."""
    for i, country in enumerate(COUNTRIES):
        Customer(name=f"Person {i}", email=f"c{i}@example.com", country=country).save(using="customers")
    response = root_client.get(url())
    options = dict((label, value) for value, label in select_options(response.content, "filter-select"))
    assert set(COUNTRIES) <= set(options)
    chosen = root_client.get(url() + options["FI"])
    assert [c.country for c in chosen.context["cl"].result_list] == ["FI"]
