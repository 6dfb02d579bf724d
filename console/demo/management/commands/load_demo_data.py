"""Load demo data into every panel's database: customers, staff users, legacy rows.

Sized for a first run by default and for load tests on request
(``--customers 1000000`` takes minutes, not hours).  Customers are generated
in chunks (``console.demo.generate``) and written with one raw ``executemany``
per table and chunk, each chunk in its own transaction: no model instances,
no signals, explicit ids so children can point at their parents.  The
denormalised totals the signals would keep are computed by the generator.

Each part writes to the alias that holds its app (never ``default``) and is
skipped when that database already has its data, so ``make run`` can call
this every time.  An interrupted customers load leaves the chunks already
committed; empty the customers tables before loading again.
"""

import argparse
import time
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import DatabaseError, connections, transaction
from django.db.models import Max

from admin_site.conf import panel_apps
from admin_site.permissions import access_codename
from admin_site.pinning import using_database
from console.customers.models import Address, BusinessCustomer, Customer, Order, OrderLine, Tag
from console.demo import generate
from console.profiles.models import Profile, Team

#: Model and generated field order of each table a chunk writes, in ``Chunk.tables()`` order.
CHUNK_TABLES = (
    (Customer, generate.CUSTOMER_FIELDS),
    (BusinessCustomer, generate.BUSINESS_FIELDS),
    (Address, generate.ADDRESS_FIELDS),
    (Order, generate.ORDER_FIELDS),
    (OrderLine, generate.LINE_FIELDS),
    (Customer.tags.through, generate.CUSTOMER_TAG_FIELDS),
)


def count(value):
    """argparse type: a whole number >= 0."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def positive(value):
    number = count(value)
    if not number:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def home(app_label):
    """The alias holding ``app_label``: the first panel that lists it."""
    return panel_apps(settings.CONSOLE_DATABASES)[app_label][0]


def insert_sql(connection, model, fields):
    """``INSERT INTO table (columns) VALUES (%s, ...)`` for ``fields`` of ``model``."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(model._meta.get_field(name).column) for name in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({placeholders})"


def next_pk(model, alias):
    """The first free primary key: rows are inserted with explicit ids."""
    return (model._default_manager.using(alias).aggregate(top=Max("pk"))["top"] or 0) + 1


def ensure_tags(alias):
    """The demo tags, created if missing; returns (their pks sorted by name, how many were created)."""
    created = sum(Tag.objects.using(alias).get_or_create(name=name)[1] for name in generate.TAG_NAMES)
    tags = Tag.objects.using(alias).filter(name__in=generate.TAG_NAMES).order_by("name")
    return list(tags.values_list("pk", flat=True)), created


def rate(rows, seconds):
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "-"


class Progress:
    """A self-overwriting progress line, only on a terminal and at most twice a second."""

    def __init__(self, out, label, total, enabled):
        self.out, self.label, self.total = out, label, total
        self.enabled = enabled and out.isatty()
        self.started = self.shown = time.monotonic()
        self.done = self.rows = 0

    def advance(self, done, rows):
        self.done, self.rows = self.done + done, self.rows + rows
        now = time.monotonic()
        if self.enabled and (now - self.shown >= 0.5 or self.done == self.total):
            self.shown = now
            self.out.write(
                f"\r  {self.label}: {self.done:,}/{self.total:,} ({self.rows:,} rows, "
                f"{rate(self.rows, now - self.started)})",
                ending="",
            )
            self.out.flush()

    def close(self):
        if self.enabled:
            self.out.write("")


class Command(BaseCommand):
    help = "Load demo customers, staff users and legacy rows; parts whose database has data already are skipped."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=count, default=500, help="Customers to create (0: skip). 500.")
        parser.add_argument("--users", type=count, default=20, help="Staff users to create (0: skip). 20.")
        parser.add_argument("--legacy", type=count, default=200, help="Legacy customers to create (0: skip). 200.")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same data (on the same day). 1.")
        parser.add_argument(
            "--batch-size", type=positive, default=10_000, help="Customers per chunk and transaction. 10000."
        )

    def handle(self, *args, customers, users, legacy, seed, batch_size, verbosity=1, **options):
        self.verbosity = verbosity
        started = time.monotonic()
        # Midnight UTC: "the last three years" ends at the same instant all day long.
        now = int(time.time()) // generate.DAY * generate.DAY
        rows = 0
        if customers:
            rows += self.load_customers(customers, seed, now, batch_size)
        if users:
            rows += self.load_users(users, seed, now)
        if legacy:
            rows += self.load_legacy(legacy)
        elapsed = time.monotonic() - started
        self.say(self.style.SUCCESS(f"Demo data: {rows:,} rows in {elapsed:.2f}s ({rate(rows, elapsed)})."))

    def say(self, message):
        if self.verbosity:
            self.stdout.write(message)

    # Customers ---------------------------------------------------------------

    def load_customers(self, total, seed, now, batch_size):
        """Tags, then ``total`` customers with everything hanging off them, chunk by chunk."""
        alias = home("customers")
        if Customer.objects.using(alias).exists():
            self.say(f"customers: skipped, the '{alias}' database has customers already.")
            return 0
        started = time.monotonic()
        connection = connections[alias]
        with using_database(alias):
            tag_ids, tags_created = ensure_tags(alias)
            generator = generate.CustomerRows(
                seed,
                total,
                now,
                tag_ids,
                first_customer_id=next_pk(Customer, alias),
                first_order_id=next_pk(Order, alias),
                uuid_hex=not connection.features.has_native_uuid_field,
            )
            counts = self.insert_chunks(alias, generator.chunks(batch_size), total)
            self.reset_sequences(alias)
        done = sum(counts.values()) + tags_created
        elapsed = time.monotonic() - started
        self.say(
            f"customers: {counts['customers']:,} customers ({counts['business customers']:,} business), "
            f"{counts['addresses']:,} addresses, {counts['orders']:,} orders, {counts['order lines']:,} order lines, "
            f"{counts['customer tags']:,} tag links, {tags_created} new tags in '{alias}': "
            f"{done:,} rows in {elapsed:.2f}s ({rate(done, elapsed)})."
        )
        return done

    def insert_chunks(self, alias, chunks, total):
        """Write each chunk in one transaction; returns rows written per table."""
        connection = connections[alias]
        statements = [insert_sql(connection, model, fields) for model, fields in CHUNK_TABLES]
        counts = {}
        progress = Progress(self.stdout, "customers", total, self.verbosity > 0)
        try:
            for chunk in chunks:
                with transaction.atomic(using=alias), connection.cursor() as cursor:
                    for sql, (name, rows) in zip(statements, chunk.tables(), strict=True):
                        if rows:
                            cursor.executemany(sql, rows)
                        counts[name] = counts.get(name, 0) + len(rows)
                progress.advance(len(chunk.customers), chunk.row_count)
        except KeyboardInterrupt:
            progress.close()
            self.stderr.write(
                f"Interrupted after {progress.done:,} customers: '{alias}' keeps them, and a new run would skip "
                "the customers part. Empty the customers tables to load again."
            )
            raise
        progress.close()
        return counts

    def reset_sequences(self, alias):
        """Explicit ids bypass the sequences of backends that have them (PostgreSQL); SQLite and MySQL need nothing."""
        connection = connections[alias]
        statements = connection.ops.sequence_reset_sql(no_style(), [Customer, Order, Address, OrderLine])
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)

    # Users -------------------------------------------------------------------

    def load_users(self, total, seed, now):
        """Teams and staff users with profiles; most may enter some panels, every fourth none."""
        alias = home("auth")
        User = get_user_model()
        users = User._default_manager.db_manager(alias)
        if Team.objects.using(alias).exists() or users.filter(is_superuser=False).exists():
            self.say(f"users: skipped, the '{alias}' database has teams or non-superuser users already.")
            return 0
        started = time.monotonic()
        permissions = self.panel_permissions(alias)
        panels = [panel for panel in settings.CONSOLE_DATABASES if access_codename(panel) in permissions]
        rows = 0
        with using_database(alias), transaction.atomic(using=alias):
            teams = {}
            for name, description in generate.TEAMS:
                teams[name] = Team.objects.using(alias).create(name=name, description=description)
            for spec in generate.staff_users(seed, total, now, panels):
                rows += self.create_user(alias, spec, teams, permissions)
        rows += len(teams)
        elapsed = time.monotonic() - started
        self.say(
            f"users: {total:,} staff users with profiles in {len(teams)} teams in '{alias}' "
            f"(unusable passwords; create a login with `manage.py create_login`): {rows:,} rows in {elapsed:.2f}s."
        )
        return rows

    def panel_permissions(self, alias):
        """codename -> Permission for the panels' access permissions, made by ``migrate_all``."""
        permissions = Permission.objects.using(alias).filter(
            content_type__app_label="admin_site", content_type__model="panel", codename__startswith="access_"
        )
        found = {permission.codename: permission for permission in permissions}
        if not found:
            self.stderr.write("users: no panel access permissions found; run `manage.py migrate_all` first.")
        return found

    def create_user(self, alias, spec, teams, permissions):
        """One user with its profile, teams and panel permissions; returns the rows written."""
        user = get_user_model()(
            username=spec.username,
            first_name=spec.first_name,
            last_name=spec.last_name,
            email=spec.email,
            is_staff=True,
            is_active=spec.is_active,
            date_joined=datetime.fromtimestamp(spec.date_joined, UTC),
        )
        user.set_unusable_password()
        user.save(using=alias)
        profile = Profile(
            user=user, display_name=f"{spec.first_name} {spec.last_name}", phone=spec.phone, timezone=spec.timezone
        )
        profile.save(using=alias)
        profile.teams.set([teams[name] for name in spec.teams])
        user.user_permissions.set([permissions[access_codename(panel)] for panel in spec.panels])
        return 2 + len(spec.teams) + len(spec.panels)

    # Legacy ------------------------------------------------------------------

    def load_legacy(self, total):
        """Delegate to ``console.legacy.demo``, which knows the legacy schema and skips a loaded database."""
        alias = home("legacy")
        try:
            from console.legacy.demo import load as load_legacy
        except ImportError as error:
            if error.name not in ("console.legacy.demo", "console.legacy"):
                raise  # a real import error inside the module: show it
            self.stderr.write(f"legacy: skipped, console.legacy.demo is not available yet ({error}).")
            return 0
        started = time.monotonic()
        try:
            with using_database(alias):
                counts = load_legacy(using=alias, customers=total)
        except DatabaseError as error:
            raise CommandError(
                f"legacy: cannot load into '{alias}' ({error}); "
                "create its tables first with `manage.py create_legacy_schema`."
            ) from error
        if not counts:
            self.say(f"legacy: skipped, the '{alias}' database has legacy customers already.")
            return 0
        rows = sum(counts.values())
        tables = ", ".join(f"{rows:,} {table}" for table, rows in counts.items())
        self.say(f"legacy: {tables} in '{alias}': {rows:,} rows in {time.monotonic() - started:.2f}s.")
        return rows
