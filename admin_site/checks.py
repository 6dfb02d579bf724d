"""System checks that turn configuration mistakes into messages at start-up."""

import os
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.db.utils import load_backend

from admin_site.conf import LOCAL_HOSTS, panel_apps
from admin_site.replicas import configured as configured_replicas


@checks.register
def check_every_app_has_a_database(app_configs=None, **kwargs):
    """An app with models but no alias would send its queries to the empty default."""
    holders = panel_apps(settings.CONSOLE_DATABASES)
    errors = []
    for config in apps.get_app_configs():
        if any(True for _ in config.get_models()) and config.label not in holders:
            errors.append(
                checks.Error(
                    f"App '{config.label}' has models but no database in CONSOLE_DATABASES holds it.",
                    hint="Add it to the 'apps' of one alias.",
                    obj=config.label,
                    id="console.E001",
                )
            )
    return errors


@checks.register
def check_panels_have_databases(app_configs=None, **kwargs):
    """Each configured panel needs a DATABASES entry of the same alias."""
    return [
        checks.Error(f"Panel '{alias}' has no DATABASES entry.", obj=alias, id="console.E002")
        for alias in settings.CONSOLE_DATABASES
        if not settings.DATABASES.get(alias)
    ]


# -- the connection budget: what the configured servers may hold open against each server's max_connections ----

#: A management command at a time per host (cron's ``sweep_uploads``, an operator's ``migrate_all``, this check).
COMMANDS_PER_HOST = 1
#: Seconds to wait for a database server the budget check asks for its max_connections.
PROBE_CONNECT_TIMEOUT = 3


@dataclass(frozen=True)
class Budget:
    """The operator's figures (``CONSOLE_WSGI_PROCESSES`` ...), defaulting to the Apache vhost's ``Define`` lines."""

    processes: int
    threads: int
    hosts: int
    workers: int

    @property
    def per_database(self):
        """Connections one database (a primary or a replica) may have open: every client thread of every host."""
        return self.hosts * (self.processes * self.threads + self.workers + COMMANDS_PER_HOST)

    def describe(self, databases):
        return (
            f"{self.hosts} app host(s) x ({self.processes} processes x {self.threads} threads"
            f" + {self.workers} background worker(s) + {COMMANDS_PER_HOST} management command)"
            f" x {databases} database(s) on it = {self.per_database * databases} connections"
        )


def _figure(name, default, minimum=1):
    """A whole number from settings, else the environment (``console.env``), else ``default``."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "").strip() or default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least {minimum}, not {value!r}.")
    return number


def connection_budget():
    """The configured figures; processes and threads default to deploy/apache/data-console.conf's Defines."""
    from admin_site.express import vhost_defines  # the one source of the defaults, as for make run's time-outs

    defines = vhost_defines()
    return Budget(
        processes=_figure("CONSOLE_WSGI_PROCESSES", defines["CONSOLE_PROCESSES"]),
        threads=_figure("CONSOLE_WSGI_THREADS", defines["CONSOLE_THREADS"]),
        hosts=_figure("CONSOLE_APP_HOSTS", 1),
        workers=_figure("CONSOLE_WORKERS", 1, minimum=0),
    )


def server_of(config):
    """``(key, name)`` of a MySQL ``DATABASES`` entry's server: the local host names share one key."""
    host = config.get("HOST") or "localhost"
    if host.startswith("/"):
        return host, host
    port = config.get("PORT") or 3306
    return (("localhost" if host in LOCAL_HOSTS else host.lower()), str(port)), f"{host}:{port}"


def mysql_servers(databases_setting, replicas):
    """``{server name: [alias, ...]}`` for every MySQL panel database and replica, in configuration order."""
    aliases = []
    for alias in settings.CONSOLE_DATABASES:
        aliases += [alias, *replicas.get(alias, ())]
    names, servers = {}, {}
    for alias in aliases:
        config = databases_setting.get(alias) or {}
        if config.get("ENGINE") == "django.db.backends.mysql":
            key, name = server_of(config)
            servers.setdefault(names.setdefault(key, name), []).append(alias)
    return servers


def read_max_connections(config, alias):
    """``@@max_connections`` over a connection of its own (closed after), waiting at most a few seconds."""
    probe = dict(config)
    probe["OPTIONS"] = {**config.get("OPTIONS", {}), "connect_timeout": PROBE_CONNECT_TIMEOUT}
    probe["CONN_MAX_AGE"] = 0
    # An alias of its own: this is not the alias's shared connection, and never becomes it.
    connection = load_backend(config["ENGINE"]).DatabaseWrapper(probe, f"{alias} (max_connections probe)")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@max_connections")
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


@checks.register(checks.Tags.database)
def check_connection_budget(app_configs=None, databases=None, **kwargs):
    """``manage.py check --database ALIAS``: warn when the configured servers may open more connections than
    the MySQL server of ALIAS (and of its replicas) allows.

    Tagged ``database`` so plain ``check`` never connects.  Aliases on one host:port share that server's
    ``max_connections``; a replica is a server of its own.  Connections are persistent (CONN_MAX_AGE), so the
    figure is what stays open, not a peak.  deploy/README.md, "Connection budget".
    """
    if not databases:
        return []
    replicas = configured_replicas()
    asked = set()
    for alias in databases:
        asked |= {alias, *replicas.get(alias, ())}
    budget = None
    messages = []
    for server, aliases in mysql_servers(connections.settings, replicas).items():
        if asked.isdisjoint(aliases):
            continue
        names = ", ".join(aliases)
        budget = budget or connection_budget()
        try:
            limit = read_max_connections(connections.settings[aliases[0]], aliases[0])
        except DatabaseError as error:
            messages.append(
                checks.Warning(
                    f"Could not read max_connections from the MySQL server {server} ({names}): {error}",
                    hint="The connection budget of that server is unchecked; is it running and reachable?",
                    obj=server,
                    id="console.W013",
                )
            )
            continue
        needed = budget.per_database * len(aliases)
        if needed > limit:
            messages.append(
                checks.Warning(
                    f"The MySQL server {server} ({names}) may have to hold {needed} connections,"
                    f" more than its max_connections of {limit}: {budget.describe(len(aliases))}.",
                    hint=(
                        "Raise max_connections on that server, or set CONSOLE_WSGI_PROCESSES, CONSOLE_WSGI_THREADS,"
                        " CONSOLE_APP_HOSTS and CONSOLE_WORKERS to what really runs; see deploy/README.md,"
                        " 'Connection budget'."
                    ),
                    obj=server,
                    id="console.W012",
                )
            )
    return messages
