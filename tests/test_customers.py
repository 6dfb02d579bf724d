"""Customer domain behaviour staff rely on: proxies, signals, counters, validation."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.admin import helpers

from console.customers.models import ActiveCustomer, Customer, Order, OrderLine, VipCustomer
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import admin_url

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def make(alias, name, **fields):
    customer = Customer(name=name, email=f"{name.lower()}@example.com", country="DE", **fields)
    customer.save(using=alias)
    return customer


def test_active_proxy_lists_only_active_customers_newest_first(root_client):
    old = make("customers", "Old", status="active")
    Customer.objects.using("customers").filter(pk=old.pk).update(
        created_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    new = make("customers", "New", status="active")
    make("customers", "Lead", status="lead")
    response = root_client.get(admin_url("customers", ActiveCustomer, "changelist"))
    assert [c.pk for c in response.context["cl"].result_list] == [new.pk, old.pk]
    assert list(ActiveCustomer.objects.using("customers").values_list("pk", flat=True)) == [new.pk, old.pk]


def test_vip_proxy_lists_only_vips_by_lifetime_value(root_client):
    small = make("customers", "Small", tier="vip")
    big = make("customers", "Big", tier="vip")
    make("customers", "Plain", tier="gold")
    for customer, price in ((small, "10.00"), (big, "900.00")):
        order = Order(customer=customer, number=f"V-{customer.pk}", placed_on=datetime.date(2026, 1, 1))
        order.save(using="customers")
        OrderLine(order=order, sku="S", quantity=1, unit_price=Decimal(price)).save(using="customers")
    response = root_client.get(admin_url("customers", VipCustomer, "changelist"))
    assert [c.pk for c in response.context["cl"].result_list] == [big.pk, small.pk]
    # The proxy's manager hides non-VIPs from its change view too.
    plain = Customer.objects.using("customers").get(name="Plain")
    assert root_client.get(admin_url("customers", VipCustomer, "change", plain.pk)).status_code == 302


def test_order_lines_keep_order_and_customer_totals_in_their_database():
    data = seed_customers("archive")
    order, ann = data["order"], data["ann"]
    line = OrderLine(order=order, sku="SKU-2", quantity=1, unit_price=Decimal("0.99"))
    line.save(using="archive")
    assert Order.objects.using("archive").get(pk=order.pk).total == Decimal("19.99")
    ann.refresh_from_db(using="archive")
    assert (ann.order_count, ann.lifetime_value) == (1, Decimal("19.99"))
    Order.objects.using("archive").filter(pk=order.pk).update(status="cancelled")
    line.delete(using="archive")
    ann.refresh_from_db(using="archive")
    assert (ann.order_count, ann.lifetime_value) == (0, Decimal("0"))
    assert not Customer.objects.using("customers").exists()


def test_emails_and_countries_are_normalised_on_every_save():
    customer = Customer(name="Mixed", email="  Mixed.Case@Example.COM ", country="de")
    customer.save(using="customers")
    customer.refresh_from_db()
    assert (customer.email, customer.country) == ("mixed.case@example.com", "DE")


def test_record_contact_counts_every_click_even_with_stale_pages(root_client):
    """Two staff with the same stale changelist: F() adds both contacts, no lost update."""
    ann = seed_customers("customers")["ann"]
    url = admin_url("customers", Customer, "changelist")
    post = {"action": "record_contact", helpers.ACTION_CHECKBOX_NAME: [str(ann.pk)]}
    stale = Customer.objects.using("customers").get(pk=ann.pk)
    assert root_client.post(url, post).status_code == 302
    assert root_client.post(url, post).status_code == 302
    stale.save(using="customers", update_fields=["name"])  # a save of other fields keeps the count
    ann.refresh_from_db()
    assert ann.contact_count == 2 and ann.last_contacted_at is not None


def test_invalid_customer_input_is_a_form_error_not_a_500(root_client):
    url = admin_url("customers", Customer, "add")
    post = {
        "name": "X",
        "email": "not-an-email",
        "country": "Germany",
        "phone": "call me",
        "status": "sleeping",
        "tier": "standard",
        "addresses-TOTAL_FORMS": "0",
        "addresses-INITIAL_FORMS": "0",
        "orders-TOTAL_FORMS": "0",
        "orders-INITIAL_FORMS": "0",
    }
    response = root_client.post(url, post)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"email", "country", "phone", "status"}
    assert not Customer.objects.using("customers").exists()


def test_business_customer_is_a_customer_in_the_same_database(root_client):
    data = seed_customers("archive")
    acme = data["acme"]
    assert Customer.objects.using("archive").filter(pk=acme.pk).exists()
    assert not Customer.objects.using("customers").exists()
    response = root_client.get(admin_url("archive", type(acme), "change", acme.pk))
    assert response.status_code == 200 and "Acme Ltd" in response.content.decode()
