"""Fixtures shared by the console's tests."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from admin_site.transfers.exports import rows as export_rows
from console.customers.models import Address, BusinessCustomer, Customer, Order, OrderLine, Tag
from console.profiles.models import Profile, Team
from tests.settings import CONSOLE_DATABASES

#: Every test that touches the database names these (never "default", which is empty).
ALL_DATABASES = list(CONSOLE_DATABASES)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Legacy tables are ``managed = False``: create them from the shipped SQL, as an operator would."""
    with django_db_blocker.unblock():
        call_command("create_legacy_schema", database="legacy", verbosity=0)


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    """Each test's import uploads wait in a directory of its own."""
    settings.CONSOLE_IMPORT_DIR = tmp_path / "imports"
    return settings.CONSOLE_IMPORT_DIR


@pytest.fixture
def superuser():
    return User.objects.db_manager("users").create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def root_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def stream_connections(monkeypatch):
    """Every separate connection an export opens."""
    opened = []
    original = export_rows.open_stream_connection

    def recording(alias):
        connection = original(alias)
        opened.append(connection)
        return connection

    monkeypatch.setattr(export_rows, "open_stream_connection", recording)
    return opened


def seed_customers(alias, suffix=""):
    """A small, connected customers data set in ``alias``: every relation kind has a row."""
    vip, loyal = Tag.objects.using(alias).bulk_create([Tag(name=f"vip{suffix}"), Tag(name=f"loyal{suffix}")])
    ann = Customer(name=f"Ann Archer{suffix}", email=f"ann{suffix}@example.com", country="DE", status="active")
    ann.save(using=alias)
    ann.tags.set([vip])
    bob = Customer(name=f"Bob Baker{suffix}", email=f"bob{suffix}@example.com", country="FR", tier="vip")
    bob.save(using=alias)
    Address(customer=ann, line1="Hauptstr. 1", city="Berlin", postcode="10115", country="DE").save(using=alias)
    Address(customer=bob, line1="1 rue de Rivoli", city="Paris", postcode="75001", country="FR").save(using=alias)
    order = Order(customer=ann, number=f"A-1{suffix}", placed_on=datetime.date(2026, 3, 1))
    order.save(using=alias)
    OrderLine(order=order, sku="SKU-1", quantity=2, unit_price=Decimal("9.50")).save(using=alias)
    acme = BusinessCustomer(
        name=f"Carla Cole{suffix}", email=f"carla{suffix}@acme.example", country="GB", company_name="Acme Ltd"
    )
    acme.save(using=alias)
    return {"ann": ann, "bob": bob, "order": order, "acme": acme, "tags": (vip, loyal)}


def seed_users(alias="users"):
    team = Team(name="Operations")
    team.save(using=alias)
    user = User(username="dora", email="dora@example.com", is_staff=True)
    user.set_password("pw")
    user.save(using=alias)
    profile = Profile(user=user, display_name="Dora D.")
    profile.save(using=alias)
    profile.teams.set([team])
    return {"team": team, "user": user, "profile": profile}
