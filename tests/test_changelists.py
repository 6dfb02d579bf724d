"""Big-table changelists: labelled counts, pages past them, word search, filters that load nothing.

The counts a page shows say whether they are exact, estimated or a lower
bound; next/previous links reach the last row whatever the count said; the
search finds what Django's ``LIKE`` search finds for whole words and prefixes
(through a FULLTEXT index on MySQL); filters still filter, without listing a
big related table.  Thresholds are lowered per test (``exact_count_max``,
``list_per_page``) so a few rows behave like millions.
"""

import datetime
import re
from html import unescape

import pytest
from django.db import connections
from django.db.models import Q

from admin_site.changelists import counts as changelists
from admin_site.changelists import main, paginator
from admin_site.changelists.counts import StatementTimeout, estimable, statement_time_limit
from admin_site.changelists.search import Match
from admin_site.concurrency import STATE_FIELD
from admin_site.sites import all_sites
from console.customers.models import ActiveCustomer, Address, Customer, Order, Tag
from console.legacy.models import Custmast, Invoice
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url, capture_queries

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

NAMES = [
    ("Ann Archer", "ann.archer@example.com", "DE", "active"),
    ("Bob Baker", "bob_baker@example.net", "FR", "lead"),
    ("Carla Cole", "carla@cole-design.example.org", "GB", "lead"),
    ("Anneliese Lindqvist", "a.lindqvist@mail.example.com", "SE", "active"),
    ("Bo Lindqvist", "bo@lindqvist.example", "SE", "suspended"),
    ("Dan O'Brien", "dan.obrien@example.com", "IE", "lead"),
    ("Eve Archibald", "eve@archibald.example", "GB", "closed"),
]


def seed(alias="customers"):
    """Seven customers, oldest first, one address each; returns them newest first (the list's order)."""
    rows = []
    for number, (name, email, country, status) in enumerate(NAMES):
        customer = Customer(name=name, email=email, country=country, status=status)
        customer.save(using=alias)
        address = Address(customer=customer, line1=f"{number} Main St", city=f"City{number % 3}", postcode="1")
        address.country = country
        address.save(using=alias)
        rows.append(customer)
    return rows[::-1]


def model_admin(model, panel="customers"):
    return all_sites()[panel]._registry[model]


def page(client, panel, model, **query):
    response = client.get(admin_url(panel, model, "changelist", **query))
    assert response.status_code == 200, response.status_code
    return response


def shown(response):
    return [obj.pk for obj in response.context["cl"].result_list]


def count_label(response):
    """The count under the list, as the user reads it, and its kind."""
    match = re.search(r'<span class="row-count" data-count-kind="([^"]+)">([^<]+)</span>', response.content.decode())
    return match[1], " ".join(match[2].split())


def next_link(response):
    match = re.search(r'<a href="([^"]+)" class="next-page"', response.content.decode())
    return unescape(match[1]) if match else None


def previous_link(response):
    match = re.search(r'<a href="([^"]+)" class="previous-page"', response.content.decode())
    return unescape(match[1]) if match else None


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of two customers, exact counts up to three rows."""
    admin = model_admin(Customer)
    monkeypatch.setattr(admin, "list_per_page", 2)
    monkeypatch.setattr(admin, "exact_count_max", 3)
    return admin


def estimate(monkeypatch, rows):
    """Make the table statistics say ``rows`` for any unfiltered list."""
    monkeypatch.setattr(changelists, "table_estimate", lambda queryset: rows if estimable(queryset) else None)


# -- counts ------------------------------------------------------------------------


def test_a_small_table_is_counted_exactly(root_client):
    seed()
    assert count_label(page(root_client, "customers", Customer)) == ("exact", "7 customers")


def test_an_unfiltered_big_table_shows_the_estimate_labelled_and_counts_nothing(root_client, small_pages, monkeypatch):
    seed()
    estimate(monkeypatch, 1_234_567)
    with capture_queries() as log:
        response = page(root_client, "customers", Customer)
    assert count_label(response) == ("estimated", "about 1,234,567 (estimated) customers")
    assert "Select all about 1,234,567 (estimated) customers" in response.content.decode()
    assert not [sql for sql in log.on("customers") if "COUNT(" in sql.upper()]


def test_a_proxy_with_a_filtered_manager_is_counted_not_estimated(root_client, monkeypatch):
    """The table's estimate counts every customer; active customers are a part of them."""
    seed()
    estimate(monkeypatch, 1_000_000)
    assert count_label(page(root_client, "customers", ActiveCustomer)) == ("exact", "2 active customers")


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@pytest.mark.skipif("connections['customers'].vendor != 'mysql'")
def test_the_estimate_is_the_panel_databases_own_table_statistics():
    seed("archive")
    for alias in ("customers", "archive"):
        with connections[alias].cursor() as cursor:
            cursor.execute("ANALYZE TABLE customers_customer")
            cursor.fetchall()
    with capture_queries() as log:
        estimates = {
            alias: changelists.table_estimate(Customer.objects.using(alias)) for alias in ("customers", "archive")
        }
    assert estimates == {"customers": 0, "archive": 7}
    assert all("information_schema" in sql for alias in ("customers", "archive") for sql in log.on(alias))
    assert changelists.table_estimate(Customer.objects.using("archive").filter(status="lead")) is None


def test_a_filtered_list_above_the_exact_bound_says_more_than(root_client, small_pages, monkeypatch):
    seed()
    estimate(monkeypatch, 1_000_000)
    monkeypatch.setattr(small_pages, "exact_count_max", 2)
    response = page(root_client, "customers", Customer, status__exact="lead")  # three leads
    assert count_label(response) == ("at least", "more than 2 customers")
    assert "more than 2 results" in response.content.decode()
    assert "about 1,000,000 (estimated) total" in response.content.decode()
    # Below the bound a filtered count is exact.
    response = page(root_client, "customers", Customer, status__exact="active")
    assert count_label(response) == ("exact", "2 customers")


def test_a_count_that_runs_out_of_time_says_more_than_what_the_page_shows(root_client, small_pages, monkeypatch):
    seed()

    def slow(alias, seconds):
        raise StatementTimeout("too slow")

    monkeypatch.setattr(changelists, "statement_time_limit", slow)
    monkeypatch.setattr(changelists, "table_estimate", lambda queryset: None)
    response = page(root_client, "customers", Customer)
    assert count_label(response) == ("at least", "more than 2 customers")
    assert next_link(response)


@pytest.mark.parametrize("count", ["stopped", "slow", "quick"])
def test_the_count_and_the_lists_own_date_span_share_one_time_budget(root_client, monkeypatch, count):
    """A list slow to count takes the unfiltered date span at once, without trying its own MIN/MAX."""
    seed()
    real_count = changelists.count_rows
    took = {"stopped": 1.0, "slow": 0.9, "quick": 0.0}[count]  # of the count's time limit
    calls = []

    def timed_count(queryset, exact_count_max, count_time_limit):
        calls.append(1)
        found = real_count(queryset, exact_count_max, count_time_limit)
        if len(calls) > 1:  # the "N total" count of the whole table
            return found
        if count == "stopped":
            return changelists.RowCount(0, changelists.AT_LEAST, seconds=count_time_limit)
        return changelists.RowCount(found.value, found.kind, seconds=count_time_limit * took)

    patch_count(monkeypatch, timed_count)
    with capture_queries() as log:
        response = page(root_client, "customers", Customer, status__exact="active")
    spans = [sql for sql in log.on("customers") if "MIN(" in sql.upper()]
    assert len(spans) == 1, spans  # one MIN/MAX: the list's own, or the unfiltered table's
    assert ("active" in spans[0]) == (count == "quick"), spans
    assert [choice["title"] for choice in response.context["cl"].date_hierarchy_context()["choices"]]


def date_choices(response):
    """The date hierarchy's links as a user reads them: (back link's title or None, [choice titles])."""
    nav = re.search(r'<nav class="toplinks">(.*?)</nav>', response.content.decode(), re.S)
    back = re.search(r'class="date-back">&lsaquo; ([^<]+)</a>', nav[1])
    choices = re.findall(r'<a href="[^"]*">([^<]+)</a>', nav[1])
    return (back[1] if back else None), choices


def created_on(customers, *dates):
    """Give ``customers`` these creation dates (noon UTC), one each."""
    for customer, (year, month, day) in zip(customers, dates, strict=True):
        moment = datetime.datetime(year, month, day, 12, tzinfo=datetime.UTC)
        Customer.objects.using("customers").filter(pk=customer.pk).update(created_at=moment)


def test_a_filtered_lists_date_hierarchy_spans_its_own_first_and_last_date(root_client, monkeypatch):
    """Years, then a year's months, from the filtered list's first to its last date: never the other rows'."""
    monkeypatch.setattr(model_admin(Customer), "count_time_limit", 10)  # time enough for the list's own dates
    customers = seed()  # newest first; Ann Archer and Anneliese Lindqvist are the active ones
    active = [c for c in customers if c.status == "active"]
    others = [c for c in customers if c.status != "active"]
    created_on(active, (2023, 5, 4), (2025, 11, 20))
    created_on(others, *[(2019, 1, 1)] * 2, *[(2027, 6, 1)] * (len(others) - 2))
    assert date_choices(page(root_client, "customers", Customer, status__exact="active")) == (
        None,
        ["2023", "2024", "2025"],
    )
    created_on(active, (2024, 2, 10), (2024, 7, 1))
    back, months = date_choices(page(root_client, "customers", Customer, status__exact="active", created_at__year=2024))
    assert back == "All dates"
    assert months == ["February 2024", "March 2024", "April 2024", "May 2024", "June 2024", "July 2024"]
    # One year, one month: Django's start level is the month's days.
    created_on(active, (2024, 2, 10), (2024, 2, 12))
    back, days = date_choices(page(root_client, "customers", Customer, status__exact="active"))
    assert back == "2024" and days == ["February 10", "February 11", "February 12"]


def test_a_date_hierarchy_on_the_whole_lists_span_stays_within_the_chosen_year(root_client):
    """A filter across a relation takes the whole list's dates: the months shown are still the chosen year's."""
    customers = seed()
    created_on(customers, (2027, 3, 1), (2024, 9, 9), (2024, 4, 2), *[(2021, 6, 6)] * (len(customers) - 3))
    listed = page(root_client, "customers", Customer, addresses__city="City0", created_at__year=2024)
    back, months = date_choices(listed)
    assert back == "All dates" and months[0] == "January 2024" and months[-1] == "December 2024", months
    assert len(months) == 12
    _, years = date_choices(page(root_client, "customers", Customer, addresses__city="City0"))
    assert years == [str(year) for year in range(2021, 2028)]


def test_a_count_reads_on_in_steps_while_they_are_cheap(root_client, monkeypatch):
    """Two rows, then ten times as many: a cheap count reaches the exact number; a dear one stops early."""
    seed()
    monkeypatch.setattr(changelists, "COUNT_STEP", 2)
    monkeypatch.setattr(model_admin(Customer), "exact_count_max", 30)
    # The step's rule, as if each step took no time: what the rule decides is tested below, not the machine's speed.
    rule = changelists.next_count_step
    monkeypatch.setattr(
        changelists,
        "next_count_step",
        lambda counted, bound, seconds, step, limit: rule(counted, bound, 0.0, 0.0, limit),
    )
    with capture_queries() as log:
        response = page(root_client, "customers", Customer, country__in="DE,FR,GB,SE,IE")
    counts = [sql for sql in log.on("customers") if "COUNT(" in sql.upper() and "'SE'" in sql]
    limits = [re.search(r"LIMIT (\d+)", sql)[1] for sql in counts]
    assert limits == ["3", "21"] and count_label(response) == ("exact", "7 customers")
    monkeypatch.setattr(changelists, "next_count_step", lambda *args: 0)  # the first step was too slow to go on
    monkeypatch.setattr(model_admin(Customer), "list_per_page", 1)
    response = page(root_client, "customers", Customer, country__in="DE,FR,GB,SE,IE")
    assert count_label(response) == ("at least", "more than 2 customers")


@pytest.mark.parametrize(
    ("counted", "seconds", "step", "expected"),
    [
        (1_000, 0.0002, 0.0002, 10_000),  # an indexed column: 2 ms more
        (1_000, 0.003, 0.003, 0),  # through a join: 30 ms more, over the 20 ms limit
        (1_000, 0.013, 0.0008, 0),  # cheap, but the time already spent leaves too little
        (5_000, 0.001, 0.001, 10_000),  # the last step goes to the bound (twice as far)
        (10_000, 0.001, 0.001, 0),  # at the bound: "more than 10,000"
    ],
)
def test_a_counts_next_step_is_ten_times_as_far_while_that_fits_in_the_time_limit(counted, seconds, step, expected):
    assert changelists.next_count_step(counted, 10_000, seconds, step, 0.02) == expected


def test_statement_time_limit_stops_a_long_statement_and_leaves_the_connection_usable():
    connection = connections["customers"]
    endless = (  # a billion rows: minutes on any backend
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) "
        "SELECT COUNT(*) FROM c AS a, c AS b, c AS d"
    )
    with pytest.raises(StatementTimeout), statement_time_limit("customers", 0.05), connection.cursor() as cursor:
        cursor.execute(endless)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1


# -- pages -------------------------------------------------------------------------


def walk_next(client, response):
    """Follow Next links from ``response`` to the end; the pks of every page, in order."""
    seen, pages = shown(response), 1
    while (link := next_link(response)) is not None:
        response = client.get(admin_url("customers", Customer, "changelist") + link)
        assert response.status_code == 200
        seen += shown(response)
        pages += 1
        assert pages < 20
    return seen, response


def test_next_links_past_a_low_estimate_reach_the_last_row(root_client, small_pages, monkeypatch):
    customers = seed()
    estimate(monkeypatch, 4)  # two pages by the estimate, four in truth
    seen, last = walk_next(root_client, page(root_client, "customers", Customer))
    assert seen == [c.pk for c in customers]
    assert last.context["cl"].page_num == 4 and not next_link(last)
    # Previous links walk back the same pages.
    back = [shown(last)]
    while (link := previous_link(last)) is not None:
        last = root_client.get(admin_url("customers", Customer, "changelist") + link)
        back.insert(0, shown(last))
    assert sum(back, []) == [c.pk for c in customers]


def test_numbered_pages_past_a_low_estimate_work_too(root_client, small_pages, monkeypatch):
    customers = seed()
    estimate(monkeypatch, 4)
    assert shown(page(root_client, "customers", Customer, p=4)) == [customers[-1].pk]


@pytest.mark.parametrize("ordering", ["", "name", "-lifetime_value"])
def test_deep_numbered_pages_read_pks_first_and_show_the_same_rows(root_client, small_pages, monkeypatch, ordering):
    seed()
    estimate(monkeypatch, 100)
    query = {"o": {"name": "0", "-lifetime_value": "-6"}[ordering]} if ordering else {}  # list_display indexes
    plain = [shown(page(root_client, "customers", Customer, p=n, **query)) for n in (2, 3, 4)]
    deferred_join_from(monkeypatch, 1)
    with capture_queries() as log:
        deferred = [shown(page(root_client, "customers", Customer, p=n, **query)) for n in (2, 3, 4)]
    assert deferred == plain and sum(plain, [])
    assert any(re.search(r"SELECT \S+\.\S+id\S* AS \S+pk\S* FROM", sql) for sql in log.on("customers")), "no pk query"


def test_a_page_past_a_high_estimate_is_an_empty_page_not_an_error(root_client, small_pages, monkeypatch):
    seed()
    estimate(monkeypatch, 100)
    response = page(root_client, "customers", Customer, p=30)
    assert shown(response) == []
    assert "This page is past the last row" in response.content.decode()


def test_an_editable_list_past_an_inexact_count_edits_the_rows_it_shows(root_client, monkeypatch):
    """Its pages hold a QuerySet of the rows shown (a formset needs one), in the list's order."""
    Tag.objects.using("customers").bulk_create(Tag(name=f"tag{n}") for n in range(5))
    admin = model_admin(Tag)
    monkeypatch.setattr(admin, "list_per_page", 2)
    monkeypatch.setattr(admin, "exact_count_max", 1)
    first = page(root_client, "customers", Tag)
    assert count_label(first)[0] != "exact"  # "more than 1" (or MariaDB's table estimate)
    second = root_client.get(admin_url("customers", Tag, "changelist") + next_link(first))
    for response in (first, second):
        assert [form.instance.pk for form in response.context["cl"].formset.forms] == shown(response)
    pks = shown(second)
    data = {"form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "2", "form-MIN_NUM_FORMS": "0", "_save": "Save"}
    forms = second.context["cl"].formset.forms
    for number, pk in enumerate(pks):
        data |= {f"form-{number}-id": str(pk), f"form-{number}-name": f"renamed{number}"}
        data[f"form-{number}-{STATE_FIELD}"] = forms[number].initial[STATE_FIELD]  # the row's state token
    assert root_client.post(admin_url("customers", Tag, "changelist"), data).status_code == 302
    assert dict(Tag.objects.using("customers").filter(pk__in=pks).values_list("pk", "name")) == {
        pk: f"renamed{number}" for number, pk in enumerate(pks)
    }


def test_keyset_links_give_the_same_pages_as_page_numbers(root_client, small_pages):
    seed()
    numbered = [shown(page(root_client, "customers", Customer, p=n)) for n in (1, 2, 3, 4)]
    seen, _ = walk_next(root_client, page(root_client, "customers", Customer))
    assert seen == sum(numbered, [])
    assert "cursor=" in next_link(page(root_client, "customers", Customer))


def page_links(response):
    """``{number: query string}`` of the numbered page links under the list."""
    found = re.findall(
        r'<a href="([^"]+)"(?: class="end")?>(\d+)</a>', response.content.decode().split('class="paginator"')[1]
    )
    return {int(number): unescape(link) for link, number in found}


@pytest.mark.parametrize("ordering", ["", "name", "-lifetime_value"])
def test_numbered_links_near_a_deep_page_read_from_its_rows_and_show_the_numbered_pages(
    root_client, monkeypatch, ordering
):
    seed()
    monkeypatch.setattr(model_admin(Customer), "list_per_page", 1)
    deferred_join_from(monkeypatch, 2)  # pages from the third on are "deep"
    query = {"o": {"name": "0", "-lifetime_value": "-6"}[ordering]} if ordering else {}
    numbered = {n: shown(page(root_client, "customers", Customer, p=n, **query)) for n in range(1, 8)}
    links = page_links(page(root_client, "customers", Customer, p=5, **query))
    assert sorted(links) == [1, 2, 3, 4, 6, 7]
    with_cursor = {n for n, link in links.items() if "cursor=" in link}
    assert with_cursor == {3, 4, 6, 7}  # within three pages of page 5, and deep
    for number, link in links.items():
        response = root_client.get(admin_url("customers", Customer, "changelist") + link)
        assert response.context["cl"].page_num == number
        assert shown(response) == numbered[number], (number, link)


def test_a_numbered_link_whose_rows_went_reads_its_page_by_number(root_client, monkeypatch):
    customers = seed()
    monkeypatch.setattr(model_admin(Customer), "list_per_page", 1)
    deferred_join_from(monkeypatch, 1)
    link = page_links(page(root_client, "customers", Customer, p=4))[2]  # passes over page 3's row, backwards
    assert "cursor=" in link
    for gone in customers[:2]:
        gone.delete(using="customers")
    response = root_client.get(admin_url("customers", Customer, "changelist") + link)
    assert response.context["cl"].page_num == 2
    assert shown(response) == shown(page(root_client, "customers", Customer, p=2)) == [customers[3].pk]


def test_keyset_links_follow_a_multi_column_ordering(root_client, monkeypatch):
    """Active customers are ordered by (-created_at, -id): the cursor carries both."""
    customers = seed()
    monkeypatch.setattr(model_admin(ActiveCustomer), "list_per_page", 1)
    response = page(root_client, "customers", ActiveCustomer)
    pks = shown(response)
    while (link := next_link(response)) is not None:
        response = root_client.get(admin_url("customers", ActiveCustomer, "changelist") + link)
        pks += shown(response)
    assert pks == [c.pk for c in customers if c.status == "active"]


# -- search ------------------------------------------------------------------------

#: Whole words, prefixes, several words, e-mail parts, short words, stopwords, no match.
TERMS = [
    "lindqvist",
    "Lindq",
    "archer",
    "Arch",
    "ann",
    "Ann Archer",
    "example.com",
    "ann.archer@example",
    "bob_baker",
    "o'brien",
    "brien",
    "cole-design",
    "bo",
    "com",
    '"Bo Lindqvist"',
    "zzz",
]


def like_search(alias, term):
    """What Django's own search (``icontains`` on name and email for each word) finds."""
    from django.utils.text import smart_split, unescape_string_literal

    queryset = Customer.objects.using(alias)
    for bit in smart_split(term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        queryset = queryset.filter(Q(name__icontains=bit) | Q(email__icontains=bit))
    return sorted(queryset.values_list("pk", flat=True))


# InnoDB shows a row to MATCH only once its transaction commits: commit the rows for real.
search_db = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


@search_db
def test_search_finds_what_like_finds_for_whole_words_and_prefixes(root_client):
    seed()
    for term in TERMS:
        response = page(root_client, "customers", Customer, q=term)
        assert sorted(shown(response)) == like_search("customers", term), term
    assert sorted(shown(page(root_client, "customers", Customer, q="lindqvist"))) != []


@search_db
def test_search_keeps_the_prefix_and_exact_conventions(root_client, monkeypatch):
    seed()
    monkeypatch.setattr(model_admin(Customer), "search_fields", ["^name", "=email"])
    assert len(shown(page(root_client, "customers", Customer, q="Ann"))) == 2  # Ann Archer, Anneliese
    assert shown(page(root_client, "customers", Customer, q="Archer")) == []  # not at the start
    assert len(shown(page(root_client, "customers", Customer, q="bo@lindqvist.example"))) == 1
    assert shown(page(root_client, "customers", Customer, q="lindqvist.example")) == []


@search_db
@pytest.mark.skipif("connections['customers'].vendor != 'mysql'")
def test_search_on_mysql_reads_the_fulltext_index():
    seed()
    queryset = Customer.objects.using("customers").filter(Match("search_words", against="+lindqvist*"))
    plan = queryset.explain()
    assert "customer_search_words_ft" in plan and "fulltext" in plan.lower(), plan
    assert queryset.count() == 2


@search_db
@pytest.mark.skipif("connections['customers'].vendor != 'mysql'")
def test_a_fulltext_search_stopped_by_the_time_limit_is_a_timeout_not_an_error(root_client, monkeypatch):
    """MariaDB reports a FULLTEXT search stopped by max_statement_time as handler error 188, not 1969."""
    Customer.objects.using("customers").bulk_create(
        Customer(name=f"Lisa Lindqvist {n}", email=f"lisa{n}@example.com", country="SE") for n in range(3000)
    )
    query = Customer.objects.using("customers").filter(Match("search_words", against="+lindqvist*"))
    stopped = 0
    for seconds in (0.000001, 0.00001, 0.0001):
        try:
            with statement_time_limit("customers", seconds):
                query.count()
        except StatementTimeout:
            stopped += 1
    assert stopped
    monkeypatch.setattr(model_admin(Customer), "count_time_limit", 0.0001)
    response = page(root_client, "customers", Customer, q="lindqvist")
    assert count_label(response)[0] in ("at least", "exact")


def deferred_join_from(monkeypatch, rows):
    """Pages from ``rows`` rows in are "deep": read by their pks first, their nearby links by cursor."""
    monkeypatch.setattr(paginator, "DEFERRED_JOIN_FROM", rows)
    monkeypatch.setattr(main, "DEFERRED_JOIN_FROM", rows)


def patch_count(monkeypatch, count_rows):
    """Count every list (the page's count and the "N total") with ``count_rows``."""
    monkeypatch.setattr(paginator, "count_rows", count_rows)
    monkeypatch.setattr(main, "count_rows", count_rows)


def stopped_count(monkeypatch):
    """Make every count run out of its time, as a common word's FULLTEXT count does on a big table."""
    patch_count(monkeypatch, lambda queryset, most, seconds: changelists.RowCount(0, "at least", seconds, True))


#: What a search for "lindqvist" finds beside ``seed()``: a word joined by "_" (found), one inside a word (not).
JOINED = ("Bianca Berg", "bianca_lindqvist@example.com")
INSIDE = ("Per Blindqvist", "per@example.se")


def seed_lindqvists(alias="customers"):
    """``seed()`` plus a "lindqvist" joined to another word by "_" and one inside a word; returns the two."""
    seed(alias)
    joined, inside = (Customer(name=name, email=email, country="SE") for name, email in (JOINED, INSIDE))
    joined.save(using=alias)
    inside.save(using=alias)
    return joined, inside


def searched(alias, term):
    """The pks the search ``term`` shows, newest first: words and prefixes on MySQL, substrings elsewhere."""
    if connections[alias].vendor != "mysql":
        return like_search(alias, term)[::-1]
    words = Customer.objects.using(alias).filter(Match("search_words", against=f"+{term}*"))
    return list(words.order_by("-id").values_list("pk", flat=True))


def count_budget(monkeypatch, budget):
    """Give every count ``budget``: "zero" (it always runs out) or "unlimited" (it never does)."""
    admin = model_admin(Customer)
    if budget == "zero":
        monkeypatch.setattr(admin, "count_time_limit", 0)
        stopped_count(monkeypatch)
    else:
        monkeypatch.setattr(admin, "count_time_limit", 3600)
        monkeypatch.setattr(admin, "exact_count_max", 10**9)


@search_db
@pytest.mark.parametrize("budget", ["zero", "unlimited"])
@pytest.mark.parametrize("per_page", [1, 2, 50])
def test_a_search_shows_the_same_rows_on_every_page_whatever_the_count_budget(
    root_client, monkeypatch, budget, per_page
):
    """The count's time budget changes how the count reads, never which rows the pages hold."""
    seed_lindqvists()
    monkeypatch.setattr(model_admin(Customer), "list_per_page", per_page)
    count_budget(monkeypatch, budget)
    first = page(root_client, "customers", Customer, q="lindqvist")
    seen, _ = walk_next(root_client, first)
    assert seen == searched("customers", "lindqvist")
    if per_page < len(seen):  # a page that holds every row proves the count exact, whatever the budget
        assert count_label(first)[0] == ("at least" if budget == "zero" else "exact")


@search_db
def test_a_search_finds_a_word_joined_to_another_by_an_underscore(root_client):
    """InnoDB reads "_" as a letter: the index holds the column of normalised words instead."""
    joined, inside = seed_lindqvists()
    found = shown(page(root_client, "customers", Customer, q="Lindqvist"))
    assert joined.pk in found and len(found) >= 3
    assert joined.pk in shown(page(root_client, "customers", Customer, q="bianca_lindqvist"))
    assert found == searched("customers", "lindqvist")


SUBSTRING_WARNING = "is searched inside words too"


@search_db
def test_a_search_inside_words_is_marked_by_a_star_and_warns_where_the_index_answers(root_client):
    joined, inside = seed_lindqvists()
    response = page(root_client, "customers", Customer, q="*ndqvist")
    assert sorted(shown(response)) == like_search("customers", "ndqvist")
    assert inside.pk in shown(response) and joined.pk in shown(response)
    on_mysql = connections["customers"].vendor == "mysql"
    assert (SUBSTRING_WARNING in unescape(response.content.decode())) == on_mysql
    # Without the star: words and word prefixes on MySQL, a term inside a word is not found.
    plain = page(root_client, "customers", Customer, q="ndqvist")
    assert (inside.pk in shown(plain)) != on_mysql
    assert SUBSTRING_WARNING not in unescape(plain.content.decode())
    # A star term and a word: the word through the index, the star term as a substring among its rows.
    both = page(root_client, "customers", Customer, q="per *ndqvist")
    assert shown(both) == [inside.pk]


@search_db
def test_the_substring_warning_is_shown_once(root_client):
    seed_lindqvists()
    page(root_client, "customers", Customer, q="*ndqvist")
    assert SUBSTRING_WARNING not in page(root_client, "customers", Customer).content.decode()


@search_db
def test_a_lone_star_marks_nothing_on_every_backend(root_client):
    """``*`` alone is no term: the same rows as without it, on SQLite and MySQL alike."""
    seed_lindqvists()
    everyone = shown(page(root_client, "customers", Customer))
    assert shown(page(root_client, "customers", Customer, q="*")) == everyone
    assert shown(page(root_client, "customers", Customer, q='** "*"')) == everyone
    lindqvists = shown(page(root_client, "customers", Customer, q="lindqvist"))
    assert shown(page(root_client, "customers", Customer, q="* lindqvist *")) == lindqvists


@search_db
def test_a_search_of_too_many_terms_is_a_bad_request_not_a_server_error(root_client):
    seed_lindqvists()
    assert page(root_client, "customers", Customer, q=" ".join(["lindqvist"] * 50))
    response = root_client.get(admin_url("customers", Customer, "changelist", q=" ".join(["ab"] * 1000)))
    assert response.status_code == 400
    export = root_client.get(admin_url("customers", Customer, "export", q=" ".join(["*ab"] * 1000)))
    assert export.status_code == 400


@search_db
@pytest.mark.skipif("connections['customers'].vendor != 'mysql'")
def test_the_substring_warning_names_a_few_short_terms_once(root_client):
    seed_lindqvists()
    terms = ["*" + "x" * 5000] + ["*ab"] * 30 + [f"*{word}" for word in ("cd", "ef", "gh", "ij", "kl", "mn")]
    response = page(root_client, "customers", Customer, q=" ".join(terms))
    [warning] = [str(message) for message in response.context["messages"]]
    assert warning.count("“ab”") == 1 and "are searched inside words too" in warning
    assert "3 more" in warning and "x" * 40 + "…" in warning and "x" * 41 not in warning


@search_db
def test_an_action_on_ticked_rows_of_a_search_whose_count_ran_out_takes_every_ticked_row(root_client, monkeypatch):
    joined, inside = seed_lindqvists()
    stopped_count(monkeypatch)
    url = admin_url("customers", Customer, "changelist", q="lindqvist")
    ticked = shown(page(root_client, "customers", Customer, q="lindqvist"))
    assert joined.pk in ticked
    response = root_client.post(url, {"action": "record_contact", "_selected_action": ticked, "index": 0})
    assert response.status_code == 302
    counts = dict(Customer.objects.using("customers").values_list("pk", "contact_count"))
    assert {pk for pk, contacts in counts.items() if contacts} == set(ticked)


@search_db
@pytest.mark.skipif("connections['customers'].vendor != 'mysql'")
def test_a_search_counted_in_time_is_read_through_the_index(root_client):
    seed()
    with capture_queries() as log:
        response = page(root_client, "customers", Customer, q="lindqvist")
    assert count_label(response) == ("exact", "2 customers")
    sql = log.on("customers")
    assert not any("LIKE" in q for q in sql)
    # The date hierarchy's span is the whole list's: over the search it would be one more index look-up.
    spans = [q for q in sql if "MIN(" in q]
    assert spans and not any("MATCH" in q for q in spans)


# -- filters -----------------------------------------------------------------------


def test_filters_still_filter(root_client):
    customers = seed()
    tag = Tag(name="loyal")
    tag.save(using="customers")
    customers[0].tags.set([tag])
    cases = {
        "status__exact": ("lead", Q(status="lead")),
        "country": ("SE", Q(country="SE")),
        "addresses__city": ("City1", Q(addresses__city="City1")),
        "tags__id__exact": (str(tag.pk), Q(tags=tag)),
    }
    for param, (value, condition) in cases.items():
        expected = sorted(Customer.objects.using("customers").filter(condition).values_list("pk", flat=True))
        assert sorted(shown(page(root_client, "customers", Customer, **{param: value}))) == expected, param


def test_a_filter_across_addresses_lists_each_customer_once_without_select_distinct(root_client):
    customers = seed()
    ann = customers[-1]
    Address(customer=ann, line1="2 Side St", city="City0", postcode="1", country="DE").save(using="customers")
    with capture_queries() as log:
        response = page(root_client, "customers", Customer, addresses__city="City0")
    expected = sorted(set(Address.objects.using("customers").filter(city="City0").values_list("customer", flat=True)))
    assert sorted(shown(response)) == expected and ann.pk in expected
    assert len(shown(response)) == len(set(shown(response)))
    page_query = [sql for sql in log.on("customers") if "LIMIT" in sql and "COUNT(" not in sql.upper()][0]
    assert "EXISTS" in page_query and "DISTINCT" not in page_query


@pytest.mark.parametrize("most", [10, 2])
def test_a_filter_across_a_relation_is_counted_from_the_join_not_row_by_row(root_client, monkeypatch, most):
    """Its count reads the distinct keys the join finds; its dates are the whole list's (no MIN/MAX over the join)."""
    customers = seed()
    Address(customer=customers[0], line1="2 Side St", city="City0", postcode="1", country="DE").save(using="customers")
    monkeypatch.setattr(model_admin(Customer), "exact_count_max", most)
    monkeypatch.setattr(model_admin(Customer), "list_per_page", 2)
    with capture_queries() as log:
        response = page(root_client, "customers", Customer, addresses__city="City0")
    expected = Customer.objects.using("customers").filter(addresses__city="City0").distinct().count()
    assert expected == 3
    label = ("exact", "3 customers") if most > expected else ("at least", "more than 2 customers")
    assert count_label(response) == label
    counts = [sql for sql in log.on("customers") if "COUNT(" in sql.upper() and "City0" in sql]
    assert len(counts) == 1 and "DISTINCT" in counts[0] and "EXISTS" not in counts[0], counts
    spans = [sql for sql in log.on("customers") if "MIN(" in sql.upper()]
    assert len(spans) == 1 and "City0" not in spans[0] and "JOIN" not in spans[0], spans


def test_choice_filters_read_no_values_and_dates_come_from_first_and_last(root_client):
    seed()
    with capture_queries() as log:
        response = page(root_client, "customers", Customer)
    distinct = [sql for sql in log.on("customers") if "DISTINCT" in sql.upper()]
    # Only country and city list values (each from its own index); no status/tier, no dates.
    assert len(distinct) == 2 and all(("country" in sql or "city" in sql) for sql in distinct), distinct
    years = [choice["title"] for choice in response.context["cl"].date_hierarchy_context()["choices"]]
    assert years == [str(datetime.date.today().year)] or years  # one year or a span of years
    assert any("MIN(" in sql.upper() and "MAX(" in sql.upper() for sql in log.on("customers"))


def test_a_foreign_key_filter_takes_a_key_instead_of_listing_every_row(root_client):
    customers = seed()
    ann = customers[-1]
    for number in range(3):
        Order(customer=customers[number], number=f"O-{number}", placed_on=datetime.date(2026, 1, 1)).save(
            using="customers"
        )
    Order(customer=ann, number="O-ann", placed_on=datetime.date(2026, 1, 2)).save(using="customers")
    body = page(root_client, "customers", Order).content.decode()
    assert 'class="related-id-filter"' in body
    assert customers[0].name not in body.split('id="changelist-filter"')[1]  # no list of customers
    response = page(root_client, "customers", Order, customer__id__exact=ann.pk)
    assert [o.number for o in response.context["cl"].result_list] == ["O-ann"]
    assert ann.email in response.content.decode().split('id="changelist-filter"')[1]
    addresses = page(root_client, "customers", Address, customer__id__exact=ann.pk)
    assert [a.customer_id for a in addresses.context["cl"].result_list] == [ann.pk]


def test_legacy_invoice_filter_takes_a_customer_number(root_client):
    from console.legacy.demo import load

    load(using="legacy", customers=6)
    customer = Custmast.objects.using("legacy").filter(invoices__isnull=False).first()
    response = page(root_client, "legacy", Invoice, customer__custno__exact=customer.custno)
    expected = sorted(Invoice.objects.using("legacy").filter(customer=customer).values_list("pk", flat=True))
    assert sorted(shown(response)) == expected and expected
    assert 'class="related-id-filter"' in response.content.decode()


def test_list_columns_that_follow_a_foreign_key_cost_no_query_per_row(root_client):
    customers = seed()
    for number, customer in enumerate(customers):
        Order(customer=customer, number=f"N-{number}", placed_on=datetime.date(2026, 2, 1)).save(using="customers")
    with capture_queries() as few:
        page(root_client, "customers", Order, status__exact="open")
    Order(customer=customers[0], number="N-more", placed_on=datetime.date(2026, 2, 2)).save(using="customers")
    Order(customer=customers[1], number="N-most", placed_on=datetime.date(2026, 2, 3)).save(using="customers")
    with capture_queries() as more:
        page(root_client, "customers", Order, status__exact="open")
    assert len(more.on("customers")) == len(few.on("customers"))


# -- indexes -----------------------------------------------------------------------


def test_legacy_filter_columns_are_indexed_and_the_upgrade_script_adds_the_same_indexes():
    from console.legacy.schema import SQL_DIR

    connection = connections["legacy"]
    with connection.cursor() as cursor:
        indexed = {
            table: {tuple(c["columns"]) for c in connection.introspection.get_constraints(cursor, table).values()}
            for table in ("CUSTMAST", "INVOICE")
        }
    filtered = {"INVOICE": ["PAID", "CURRENCY"], "CUSTMAST": ["CLASS", "COUNTRY", "ACTIVE", "OPENED"]}
    for table, columns in filtered.items():
        for column in columns:
            assert any(key[0] == column for key in indexed[table]), (table, column)
    upgrade = (SQL_DIR / "upgrade-0001-admin-indexes.mysql.sql").read_text()
    schema = (SQL_DIR / "schema.mysql.sql").read_text()
    added = re.findall(r"ADD KEY (`\w+` \([^)]*\))", upgrade)
    assert len(added) == 8 and all(f"KEY {key}" in schema for key in added)


def test_every_default_ordering_and_filter_of_the_customer_admins_has_an_index():
    """The first column of the ordering (after any filter of a proxy's manager) leads an index."""
    from django.contrib.admin.utils import get_fields_from_path

    site = all_sites()["customers"]
    for model, admin in site._registry.items():
        opts = model._meta.concrete_model._meta
        leading = {index.fields[0].lstrip("-") for index in opts.indexes}
        leading |= {f.name for f in opts.fields if f.db_index or f.unique or f.primary_key}
        leading |= {f.attname for f in opts.fields if f.db_index or f.primary_key}
        first = (model._meta.ordering or ["-pk"])[0].lstrip("-")
        manager_filters = getattr(model._default_manager, "filters", {})
        if manager_filters:
            assert any(
                [f.lstrip("-") for f in index.fields[:2]] == [*manager_filters, first] for index in opts.indexes
            ), model
        else:
            assert first in leading or first in ("pk", "id"), (model, first)
        for entry in admin.list_filter:
            path = entry[0] if isinstance(entry, (list, tuple)) else entry
            field = get_fields_from_path(model, path)[-1]
            if field.choices or field.many_to_many or field.is_relation:
                continue
            related = field.model._meta
            names = {index.fields[0].lstrip("-") for index in related.indexes}
            names |= {f.name for f in related.fields if f.db_index or f.unique}
            assert field.name in names, (model, path)
