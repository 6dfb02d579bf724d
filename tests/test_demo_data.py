"""``load_demo_data``: right rows in the right databases, consistent totals, safe to re-run."""

import io
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db.models import F, Q, Sum
from django.utils import timezone

from admin_site.permissions import can_enter
from console.customers import signals
from console.customers.models import Address, BusinessCustomer, Customer, Order, OrderLine, Tag
from console.demo import generate
from console.demo.management.commands.load_demo_data import Progress
from console.profiles.models import Profile, Team

DATABASES = ["users", "customers", "legacy", "archive"]
CUSTOMER_MODELS = [Customer, BusinessCustomer, Address, Order, OrderLine, Tag, Customer.tags.through]
#: A fixed "now" (midnight UTC) for the generator-only tests.
NOW = 1_780_000_000 // generate.DAY * generate.DAY


def load(**options):
    """Run the command small, without the legacy part (its tables may not exist here); returns its output."""
    out, err = io.StringIO(), io.StringIO()
    arguments = {"customers": 50, "users": 8, "legacy": 0, "seed": 3, "batch_size": 16, **options}
    call_command("load_demo_data", stdout=out, stderr=err, **arguments)
    return out.getvalue() + err.getvalue()


def flatten(chunks):
    """All rows of all chunks, per table."""
    tables = {}
    for chunk in chunks:
        for name, rows in chunk.tables():
            tables.setdefault(name, []).extend(rows)
    return tables


def customer_rows(seed=7, count=300, size=1000):
    return flatten(generate.CustomerRows(seed, count, NOW, range(1, 11)).chunks(size))


# The generator, without a database ----------------------------------------------


def test_generator_is_deterministic_whatever_the_chunk_size():
    assert customer_rows(size=1000) == customer_rows(size=7)
    assert customer_rows(seed=8) != customer_rows(seed=7)


def test_generated_emails_are_unique_and_lower_case_at_scale():
    emails = [row[generate.CUSTOMER_FIELDS.index("email")] for row in customer_rows(count=30_000)["customers"]]
    assert len(set(emails)) == len(emails)
    assert all(email == email.lower() for email in emails)


def test_generated_rows_match_their_field_lists():
    tables = customer_rows(count=200)
    widths = {
        "customers": generate.CUSTOMER_FIELDS,
        "business customers": generate.BUSINESS_FIELDS,
        "addresses": generate.ADDRESS_FIELDS,
        "orders": generate.ORDER_FIELDS,
        "order lines": generate.LINE_FIELDS,
        "customer tags": generate.CUSTOMER_TAG_FIELDS,
    }
    for name, fields in widths.items():
        assert tables[name], name
        assert {len(row) for row in tables[name]} == {len(fields)}, name


def test_staff_users_are_deterministic_and_not_all_permissioned():
    users = generate.staff_users(5, 12, NOW, ["users", "customers", "legacy"])
    assert users == generate.staff_users(5, 12, NOW, ["users", "customers", "legacy"])
    assert len({user.username for user in users}) == 12
    assert any(user.panels for user in users) and any(not user.panels for user in users)


def test_progress_line_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal, pipe = OutputWrapper(Terminal()), OutputWrapper(io.StringIO())
    for out in (terminal, pipe):
        progress = Progress(out, "customers", 10, enabled=True)
        progress.advance(10, 123)
        progress.close()
    assert "10/10" in terminal._out.getvalue() and "123 rows" in terminal._out.getvalue()
    assert pipe._out.getvalue() == ""


def test_missing_legacy_module_is_reported_not_fatal(monkeypatch):
    monkeypatch.setitem(sys.modules, "console.legacy.demo", None)  # makes the import fail
    output = load(customers=0, users=0, legacy=5)
    assert "console.legacy.demo is not available yet" in output


# Against the databases ---------------------------------------------------------

#: Every database the command could touch, so the tests can also look where it must not write.
on_databases = pytest.mark.django_db(databases=DATABASES)


@on_databases
def test_rows_land_in_their_own_databases_only():
    output = load()
    assert Customer.objects.using("customers").count() == 50
    assert Tag.objects.using("customers").count() == len(generate.TAG_NAMES)
    assert 50 <= Address.objects.using("customers").count() <= 100
    assert Order.objects.using("customers").exists()
    assert OrderLine.objects.using("customers").count() >= Order.objects.using("customers").count()
    assert Customer.tags.through.objects.using("customers").exists()
    for model in CUSTOMER_MODELS:
        assert not model.objects.using("archive").exists(), model
    assert Team.objects.using("users").count() == len(generate.TEAMS)
    assert User.objects.using("users").filter(is_staff=True, is_superuser=False).count() == 8
    assert Profile.objects.using("users").count() == 8
    assert "Demo data:" in output


@on_databases
def test_denormalised_totals_match_what_the_signals_compute():
    load()
    lines = OrderLine.objects.using("customers")
    for order in Order.objects.using("customers"):
        expected = lines.filter(order=order).aggregate(total=Sum(F("quantity") * F("unit_price")))["total"]
        assert order.total == expected, order
    for customer in Customer.objects.using("customers"):
        counted = customer.orders.filter(~Q(status=Order.Status.CANCELLED))
        assert customer.order_count == counted.count(), customer
        assert customer.lifetime_value == (counted.aggregate(v=Sum("total"))["v"] or Decimal("0")), customer
    # The signal handlers themselves, run on every row, change nothing.
    before = list(Customer.objects.using("customers").values_list("pk", "order_count", "lifetime_value"))
    totals = list(Order.objects.using("customers").values_list("pk", "total"))
    for order_id, _ in totals:
        signals.refresh_order_total(order_id, "customers")
    for customer_id, _, _ in before:
        signals.refresh_customer_totals(customer_id, "customers")
    assert list(Order.objects.using("customers").values_list("pk", "total")) == totals
    assert list(Customer.objects.using("customers").values_list("pk", "order_count", "lifetime_value")) == before


@on_databases
def test_emails_are_unique_and_lower_case():
    load()
    emails = list(Customer.objects.using("customers").values_list("email", flat=True))
    assert len(set(emails)) == len(emails) == 50
    assert all(email == email.lower() for email in emails)


@on_databases
def test_values_read_back_through_the_orm():
    """Timestamps survive (no auto_now_add overwrite), references are UUIDs, money has two places."""
    load()
    customers = Customer.objects.using("customers")
    now = timezone.now()
    oldest, newest = customers.order_by("created_at")[0].created_at, customers.order_by("-created_at")[0].created_at
    assert now - timedelta(days=3 * 365 + 1) <= oldest < newest < now
    assert newest - oldest > timedelta(days=365)
    customer = customers.order_by("pk")[0]
    assert customer.reference.version == 4
    assert customer.lifetime_value.as_tuple().exponent == -2
    assert customer.updated_at >= customer.created_at
    assert customers.get(reference=customer.reference) == customer
    assert {c.country for c in customers} <= set(generate.COUNTRIES)
    assert {c.status for c in customers} <= set(Customer.Status.values)
    assert {c.tier for c in customers} <= set(Customer.Tier.values)


@on_databases
def test_running_twice_adds_nothing():
    load()
    counts = {model: model.objects.using("customers").count() for model in CUSTOMER_MODELS}
    users = User.objects.using("users").count()
    output = load(seed=4)
    assert {model: model.objects.using("customers").count() for model in CUSTOMER_MODELS} == counts
    assert User.objects.using("users").count() == users
    assert "customers: skipped" in output and "users: skipped" in output


@on_databases
def test_business_customers_are_customers_too():
    load(customers=200)
    businesses = BusinessCustomer.objects.using("customers")
    assert businesses.exists()
    for business in businesses:
        customer = Customer.objects.using("customers").get(pk=business.pk)
        assert customer.businesscustomer.company_name == business.company_name == customer.name
        assert business.vat_number is None or business.vat_number.startswith(business.country)


@on_databases
def test_some_staff_may_enter_panels_and_some_may_not():
    load()
    staff = list(User.objects.using("users").filter(is_superuser=False))
    assert all(not user.has_usable_password() and user.profile.teams.exists() for user in staff)
    entering = [user for user in staff if any(can_enter(user, alias) for alias in ("users", "customers", "legacy"))]
    assert 0 < len(entering) < len(staff)


@on_databases
def test_same_seed_same_rows_in_the_database():
    def snapshot():
        customers = Customer.objects.using("customers").order_by("pk")
        return list(customers.values_list("email", "name", "created_at", "reference", "lifetime_value"))

    load(users=0)
    first = snapshot()
    OrderLine.objects.using("customers").all().delete()
    Order.objects.using("customers").all().delete()
    Customer.objects.using("customers").all().delete()
    load(users=0, batch_size=7)
    assert snapshot() == first
