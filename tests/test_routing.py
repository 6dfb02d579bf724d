"""Routing, configuration and migrations: where tables live and where queries go."""

import threading

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connections, router
from django.urls import get_resolver

from admin_site.conf import database_settings
from admin_site.management.commands.migrate_all import migration_order
from admin_site.pinning import pinned_database, using_database
from console.customers.models import ActiveCustomer, Address, Customer, VipCustomer
from tests.conftest import ALL_DATABASES, seed_customers
from tests.settings import CONSOLE_DATABASES

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def tables(alias):
    return set(connections[alias].introspection.table_names())


def test_each_app_has_tables_only_where_configured():
    for alias in ALL_DATABASES:
        present = tables(alias)
        for config in apps.get_app_configs():
            for model in config.get_models():
                if not model._meta.managed or model._meta.proxy:
                    continue
                expected = config.label in CONSOLE_DATABASES[alias]["apps"]
                assert (model._meta.db_table in present) == expected, (alias, model._meta.db_table)


def test_allow_migrate_answers_every_database_and_app():
    for alias in ["default", *ALL_DATABASES]:
        for config in apps.get_app_configs():
            answer = router.allow_migrate(alias, config.label)
            assert answer is (alias != "default" and config.label in CONSOLE_DATABASES[alias]["apps"])


def test_proxies_route_by_their_concrete_model():
    for model in (ActiveCustomer, VipCustomer, Customer):
        assert router.db_for_read(model) == "customers"
        with using_database("archive"):
            assert router.db_for_write(model) == "archive"
    # A pin on a database that does not hold the app leaves it at home.
    with using_database("legacy"):
        assert router.db_for_read(User) == "users"
        assert router.db_for_read(Customer) == "customers"


def test_the_pin_moves_queries_and_is_per_thread():
    seed_customers("archive")
    assert Customer.objects.count() == 0  # home: customers
    with using_database("archive"):
        assert Customer.objects.count() == 3
        seen = []
        worker = threading.Thread(target=lambda: seen.append(pinned_database()))
        worker.start()
        worker.join()
        assert seen == [None]
    assert pinned_database() is None


def test_relations_across_databases_are_refused():
    ann = seed_customers("customers")["ann"]
    other = Customer.objects.using("archive").create(name="X", email="x@example.com", country="DE")
    assert router.allow_relation(ann, other) is False
    with pytest.raises(ValueError, match='instance is on database "archive"'):
        other.tags.add(*ann.tags.all())
    address = Address(line1="x", city="y", postcode="1", country="DE", customer=other)
    with pytest.raises(ValueError, match="router prevents this relation"):
        address.customer = ann


def test_unconfigured_app_falls_through_to_empty_default_and_fails_loudly(settings):
    # The URL checks import the URLconf, whose panels are built once: build them from the real settings first.
    assert get_resolver().url_patterns
    removed = ("customers", "archive")
    settings.CONSOLE_DATABASES = {k: v for k, v in CONSOLE_DATABASES.items() if k not in removed}
    with pytest.raises(ImproperlyConfigured, match="settings.DATABASES is improperly configured"):
        Customer.objects.count()
    errors = [e for e in checks.run_checks() if e.id == "console.E001"]
    # Every app that only the removed aliases held, and no other (the test settings may add apps to them).
    kept = {app for panel in settings.CONSOLE_DATABASES.values() for app in panel["apps"]}
    orphaned = sorted({app for alias in removed for app in CONSOLE_DATABASES[alias]["apps"]} - kept)
    assert "customers" in orphaned
    assert sorted(e.obj for e in errors) == orphaned


def test_content_types_and_permissions_live_only_in_the_console_database():
    assert ContentType.objects.db_manager("users").filter(app_label="customers", model="vipcustomer").exists()
    codenames = set(Permission.objects.using("users").values_list("codename", flat=True))
    assert {"view_vipcustomer", "change_activecustomer", "access_customers", "access_archive"} <= codenames
    for alias in ALL_DATABASES:
        if alias != "users":
            assert "django_content_type" not in tables(alias)
            assert "auth_permission" not in tables(alias)


def test_migrate_all_runs_the_console_database_first_and_leaves_nothing_unapplied():
    assert migration_order(CONSOLE_DATABASES)[0] == "users"
    call_command("migrate_all", verbosity=0)
    from django.db.migrations.executor import MigrationExecutor

    for alias in ALL_DATABASES:
        executor = MigrationExecutor(connections[alias])
        assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


def test_database_settings_from_urls_and_option_files(tmp_path):
    panels = {"users": {"apps": []}, "customers": {"apps": []}, "legacy": {"apps": []}}
    environ = {
        "CONSOLE_DB_CUSTOMERS": "mysql://app:secret@127.0.0.1:3306/console_customers",
        "CONSOLE_DB_LEGACY": "mysql://db.internal:3306/legacy?read_default_file=/etc/console/legacy.cnf",
    }
    databases = database_settings(panels, tmp_path, environ)
    assert databases["default"] == {}
    assert databases["users"]["ENGINE"] == "django.db.backends.sqlite3"
    assert databases["users"]["NAME"] == str(tmp_path / "users.sqlite3")
    customers = databases["customers"]
    assert (customers["ENGINE"], customers["NAME"], customers["USER"]) == (
        "django.db.backends.mysql",
        "console_customers",
        "app",
    )
    assert customers["CONN_HEALTH_CHECKS"] is True and customers["CONN_MAX_AGE"] > 0
    assert "STRICT_TRANS_TABLES" in customers["OPTIONS"]["init_command"]
    assert customers["OPTIONS"]["ssl_disabled"] is True  # loopback: no TLS handshake per connect
    legacy = databases["legacy"]
    assert legacy["OPTIONS"]["read_default_file"] == "/etc/console/legacy.cnf"
    assert "ssl_disabled" not in legacy["OPTIONS"]  # remote host: TLS stays the driver's choice
    for alias in panels:
        assert databases[alias]["TEST"]["DEPENDENCIES"] == []


def test_mysql_runs_in_strict_mode():
    connection = connections["customers"]
    if connection.vendor != "mysql":
        pytest.skip("SQLite has no sql_mode")
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode")
        assert "STRICT_TRANS_TABLES" in cursor.fetchone()[0]
