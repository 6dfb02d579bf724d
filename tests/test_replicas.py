"""Read replicas per panel (admin_site.replicas): lists and exports read a replica, everything else the primary.

The replica here is a database of its own holding the customers schema, with
rows that differ from the primary's, so a page shows which one it read.  On
MariaDB it is a scratch database on the test server, read through a read-only
session as a real replica is; that server is no replica (SHOW SLAVE STATUS is
empty), so where a test needs a healthy replica it stores the verdict a
health check would have cached (``replicas.remember``).  Real replication, lag,
read-your-writes and a replica killed mid-session are in the e2e scale-out tests.
"""

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import DatabaseError, OperationalError, connections
from django.test import override_settings
from django.urls import reverse

from admin_site import replicas
from admin_site.conf import replica_alias
from admin_site.sites import all_sites
from console.customers.models import Customer
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import WRITE, admin_url, capture_queries, export_file
from tests.walk import PanelWalker, seed_panel

# Committed rows, as in a server: a read inside a transaction (a TestCase wraps each test in one) never goes
# to a replica.
pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

REPLICA = replica_alias("customers", 1)
WRITER = "customers_replica_writer"


def scratch_name():
    return f"test_{django_settings.TEST_DB_PREFIX}_replica"


@pytest.fixture
def replica(settings, django_db_setup, django_db_blocker, tmp_path):
    """A replica of the customers panel (``customers__replica1``): its own database, the customers schema, no rows.

    ``WRITER`` is a writable alias on the same database, for the test to put rows there; the replica alias
    itself reads through a read-only session on MariaDB, as ``CONSOLE_DB_CUSTOMERS_REPLICAS`` configures one.
    """
    primary = connections["customers"]
    scratch = None
    with django_db_blocker.unblock():
        if primary.vendor == "sqlite":
            writer = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "replica.sqlite3")}
            reader = dict(writer)
        else:
            scratch = scratch_name()
            with primary.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {primary.ops.quote_name(scratch)}")
                cursor.execute(f"CREATE DATABASE {primary.ops.quote_name(scratch)} CHARACTER SET utf8mb4")
            writer = {**primary.settings_dict, "NAME": scratch}
            options = dict(writer["OPTIONS"])
            options["init_command"] = options["init_command"] + ", SESSION tx_read_only = 1"
            reader = {**writer, "OPTIONS": options}
        configured = connections.configure_settings({"default": {}, WRITER: writer, REPLICA: reader})
        connections.settings[WRITER], connections.settings[REPLICA] = configured[WRITER], configured[REPLICA]
        with writing_to_the_replica():
            call_command("migrate", database=WRITER, verbosity=0)
        settings.CONSOLE_REPLICAS = {"customers": [REPLICA]}
        cache.delete(replicas.health_key(REPLICA))
        try:
            yield connections[REPLICA]
        finally:
            cache.delete(replicas.health_key(REPLICA))
            for alias in (REPLICA, WRITER):
                connections[alias].close()
                del connections[alias]
                del connections.settings[alias]
            if scratch:
                with primary.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS {primary.ops.quote_name(scratch)}")


def writing_to_the_replica():
    """``WRITER`` holds the customers app for the block, so relations saved there (M2M rows) stay there."""
    panel = {"title": "Replica schema", "colour": "#000000", "apps": ["customers", "importmodels"]}
    return override_settings(CONSOLE_DATABASES={**django_settings.CONSOLE_DATABASES, WRITER: panel})


def healthy(replica_connection):
    """On MariaDB the scratch database is no replica: store the verdict a check of a healthy one caches."""
    if replica_connection.vendor == "mysql":
        replicas.remember(REPLICA, replicas.Health(True, 0.0, ""))


def names(response):
    return response.content.decode()


def test_a_list_reads_the_replica_and_a_change_form_the_primary(root_client, replica):
    healthy(replica)
    on_primary = Customer.objects.using("customers").create(name="Pia Primary", email="pia@example.com", country="DE")
    Customer.objects.using(WRITER).create(name="Rex Replica", email="rex@example.com", country="DE")

    with capture_queries(["customers"]) as log:
        listed = root_client.get(admin_url("customers", Customer, "changelist"))
    assert listed.status_code == 200
    assert "Rex Replica" in names(listed) and "Pia Primary" not in names(listed)
    # Rows, counts and every filter's choices (countries, cities, tags) came from the replica.
    assert log.on("customers") == []

    # A change form is built from the primary: what a save would overwrite.
    change = root_client.get(admin_url("customers", Customer, "change", on_primary.pk))
    assert change.status_code == 200 and "Pia Primary" in names(change)

    # A POST to the list (an action) reads the primary: the replica's row is not there to act on.
    with capture_queries([REPLICA]) as log:
        root_client.post(
            admin_url("customers", Customer, "changelist"),
            {"action": "delete_selected", "_selected_action": [on_primary.pk]},
        )
    assert log.on(REPLICA) == []


def test_an_export_reads_the_replica(root_client, replica):
    healthy(replica)
    Customer.objects.using("customers").create(name="Pia Primary", email="pia@example.com", country="DE")
    Customer.objects.using(WRITER).create(name="Rex Replica", email="rex@example.com", country="DE")
    response = export_file(root_client, "customers", Customer)
    body = b"".join(response.streaming_content).decode()
    assert "rex@example.com" in body and "pia@example.com" not in body


def test_no_write_statement_reaches_the_replica_and_it_serves_only_its_panel(root_client, replica):
    """Every page of the customers panel, its forms posted back and its list saved, with a replica holding the
    same rows: the replica gets reads only, and a walk of the archive panel (same schema) never touches it."""
    healthy(replica)
    seed_panel("customers")
    with writing_to_the_replica():
        seed_customers(WRITER)
    with capture_queries(["customers", "archive", REPLICA]) as log:
        walker = PanelWalker(root_client, all_sites()["customers"])
        walker.walk_reads()
        walker.walk_change_forms()
        walker.walk_list_editable()
    walker.assert_no_leaks()
    read = log.on(REPLICA)
    assert read, "the lists and exports of the walk read the replica"
    assert [sql for sql in read if WRITE.match(sql)] == []
    assert log.writes_on("customers"), "the walk's saves went to the primary"

    seed_panel("archive")
    with capture_queries([REPLICA]) as log:
        walker = PanelWalker(root_client, all_sites()["archive"])
        walker.walk_reads()
    assert log.on(REPLICA) == [], "another panel's pages read this panel's replica"


@pytest.mark.skipif(
    "sqlite" in django_settings.DATABASES["customers"]["ENGINE"], reason="a read-only session is MariaDB's"
)
def test_the_replica_session_refuses_a_write_whatever_asks(replica):
    with pytest.raises(DatabaseError) as refused:
        Customer.objects.using(REPLICA).create(name="Never", email="never@example.com", country="DE")
    assert refused.value.args[0] == 1792  # Cannot execute statement in a READ ONLY transaction
    assert not Customer.objects.using(WRITER).filter(email="never@example.com").exists()


def test_a_replica_that_is_not_replicating_is_skipped_and_the_home_says_why(root_client, replica):
    """The check itself, against a database that is no replica (MariaDB) or cannot be opened (SQLite)."""
    if replica.vendor == "sqlite":
        connections.settings[REPLICA]["NAME"] = "/nonexistent/directory/replica.sqlite3"
        replica.close()
    Customer.objects.using("customers").create(name="Pia Primary", email="pia@example.com", country="DE")
    found = replicas.health(REPLICA)
    assert not found.ok
    assert ("not replicating" if replica.vendor == "mysql" else "unreachable") in found.why

    listed = root_client.get(admin_url("customers", Customer, "changelist"))
    assert listed.status_code == 200 and "Pia Primary" in names(listed)
    home = root_client.get(reverse("console-home"))
    assert home.status_code == 200
    row = names(home).split(f'data-replica="{REPLICA}"')[1].split("</tr>")[0]
    assert 'data-healthy="false"' in names(home) and "skipped:" in row and found.why[:20] in row


def test_the_home_shows_a_healthy_replica_as_serving(root_client, replica):
    healthy(replica)
    home = root_client.get(reverse("console-home"))
    row = names(home).split(f'data-replica="{REPLICA}"')[1].split("</tr>")[0]
    assert 'data-healthy="true"' in row and "serves lists and exports" in row and "s behind" in row


def test_a_replica_that_fails_mid_request_is_skipped_and_the_primary_answers(root_client, replica):
    healthy(replica)
    Customer.objects.using("customers").create(name="Pia Primary", email="pia@example.com", country="DE")
    Customer.objects.using(WRITER).create(name="Rex Replica", email="rex@example.com", country="DE")

    def dies_after_the_first_query(execute, sql, params, many, context):
        dies_after_the_first_query.seen += 1
        if dies_after_the_first_query.seen > 1:
            raise OperationalError(2013, "Lost connection to server during query")
        return execute(sql, params, many, context)

    dies_after_the_first_query.seen = 0
    with connections[REPLICA].execute_wrapper(dies_after_the_first_query):
        listed = root_client.get(admin_url("customers", Customer, "changelist"))
    assert listed.status_code == 200
    assert "Pia Primary" in names(listed) and "Rex Replica" not in names(listed)
    assert dies_after_the_first_query.seen >= 2
    assert not replicas.health(REPLICA).ok and "failed a read" in replicas.health(REPLICA).why

    # Skipped from then on (until its next check), without trying it first.
    with capture_queries([REPLICA]) as log:
        assert "Pia Primary" in names(root_client.get(admin_url("customers", Customer, "changelist")))
    assert log.on(REPLICA) == []


def test_a_read_inside_a_transaction_goes_to_the_primary(replica):
    from django.db import transaction

    from admin_site.pinning import reading_replicas, using_database

    healthy(replica)
    Customer.objects.using(WRITER).create(name="Rex Replica", email="rex@example.com", country="DE")
    with using_database("customers"), reading_replicas():
        assert Customer.objects.filter(email="rex@example.com").exists()  # the router sends it to the replica
        with transaction.atomic(using="customers"):
            assert not Customer.objects.filter(email="rex@example.com").exists()


def test_a_list_with_editable_rows_is_a_form_and_reads_the_primary(root_client, replica):
    from console.customers.models import Address

    healthy(replica)
    seed_panel("customers")
    with capture_queries([REPLICA]) as log:
        assert root_client.get(admin_url("customers", Address, "changelist")).status_code == 200
    assert all_sites()["customers"]._registry[Address].list_editable
    assert log.on(REPLICA) == []
    with capture_queries([REPLICA]) as log:
        assert root_client.get(admin_url("customers", Customer, "changelist")).status_code == 200
    assert log.on(REPLICA)


def test_a_panel_reads_only_its_own_replica_never_the_console_tables_replica(settings):
    """On the customers panel, sessions, users and permissions (on ``users``) come from users' primary, even
    when users has a replica too: a revoked permission is never read from a lagging copy."""
    from admin_site.pinning import read_database, reading_replicas, using_database

    settings.CONSOLE_REPLICAS = {"customers": ["customers__replica1"], "users": ["users__replica1"]}
    for alias in settings.CONSOLE_REPLICAS:
        replicas.remember(replica_alias(alias, 1), replicas.Health(True, 0.0, ""))
    try:
        with using_database("customers"), reading_replicas():
            assert read_database("customers") == "customers__replica1"
            assert read_database("users") == "users"
        with using_database("users"), reading_replicas():
            assert read_database("users") == "users__replica1"
    finally:
        for alias in settings.CONSOLE_REPLICAS:
            cache.delete(replicas.health_key(replica_alias(alias, 1)))


def test_replica_urls_become_read_only_aliases_and_a_non_mysql_url_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    from admin_site.conf import replica_settings, replicas_var

    databases = {}
    panels = {"customers": {}, "legacy": {}}
    urls = "mysql://u:p@10.0.0.21:3306/console_customers   mysql://u:p@10.0.0.22:3306/console_customers"
    found = replica_settings(panels, databases, {replicas_var("customers"): urls})
    assert found == {"customers": ["customers__replica1", "customers__replica2"]}
    second = databases["customers__replica2"]
    assert second["HOST"] == "10.0.0.22" and second["NAME"] == "console_customers"
    assert second["OPTIONS"]["init_command"].endswith("SESSION tx_read_only = 1")
    assert second["TEST"]["MIRROR"] == "customers"  # a test run never creates a database on a replica
    with pytest.raises(ImproperlyConfigured, match="CONSOLE_DB_LEGACY_REPLICAS: entry 1 is not a MySQL"):
        replica_settings(panels, {}, {replicas_var("legacy"): "sqlite:////tmp/replica.sqlite3"})
