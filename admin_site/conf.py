"""Build ``DATABASES`` and ``CACHES`` from the console's panel configuration and the environment.

Imported by settings modules, so it must not import models or touch
``django.conf.settings``.  Each panel alias reads one variable,
``CONSOLE_DB_<ALIAS>``, holding a database URL parsed by dj-database-url; when
it is unset the alias gets the embedded default, a SQLite file under ``var/``.
The cache reads ``CONSOLE_CACHE_URL`` (see ``cache_settings``).
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

#: Hosts for which TLS is pointless and costly (PyMySQL builds a TLS context
#: on every connect): traffic never leaves the machine.
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}

#: How long a MySQL connection is kept between requests; health checks make
#: a connection the server dropped reconnect instead of failing the request.
CONN_MAX_AGE = 300


#: URL schemes of ``CONSOLE_CACHE_URL`` that Django's Redis backend understands.
REDIS_SCHEMES = ("redis", "rediss", "unix")

#: Seconds to wait for Redis to connect and to answer, unless the URL says otherwise
#: (``?socket_timeout=...``): a cache that hangs must not hold a request for long.
CACHE_TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 1}


def env_var(alias):
    """The environment variable that holds ``alias``'s database URL."""
    return f"CONSOLE_DB_{alias.upper()}"


def replicas_var(alias):
    """The environment variable that holds ``alias``'s replica URLs, space-separated."""
    return f"CONSOLE_DB_{alias.upper()}_REPLICAS"


def replica_alias(alias, number):
    """The ``DATABASES`` entry of ``alias``'s replica number ``number`` (from 1)."""
    return f"{alias}__replica{number}"


#: Seconds to wait for a replica to accept a connection: a dead replica costs a page this much, once per
#: health check, before its panel reads the primary instead.
REPLICA_CONNECT_TIMEOUT = 2


def replica_settings(panels, databases, environ=os.environ):
    """Add each panel's replicas (``CONSOLE_DB_<ALIAS>_REPLICAS``) to ``databases``; return alias -> replica aliases.

    A replica's connections are read-only for the session (MariaDB refuses any
    write with error 1792), whatever the account may do: the routing decides
    where reads go, and this makes a routing mistake fail instead of writing to
    a copy that replication then overwrites.
    """
    replicas = {}
    for alias in panels:
        urls = environ.get(replicas_var(alias), "").split()
        for number, url in enumerate(urls, start=1):
            config = _tune(dj_database_url.parse(url))
            if config["ENGINE"] != "django.db.backends.mysql":
                raise ImproperlyConfigured(f"{replicas_var(alias)}: entry {number} is not a MySQL/MariaDB URL.")
            options = config["OPTIONS"]
            options["init_command"] = options["init_command"] + ", SESSION tx_read_only = 1"
            options.setdefault("connect_timeout", REPLICA_CONNECT_TIMEOUT)
            config["TEST"]["MIRROR"] = alias  # a test run makes no database on a replica
            name = replica_alias(alias, number)
            databases[name] = config
            replicas.setdefault(alias, []).append(name)
    return replicas


def database_settings(panels, var_dir, environ=os.environ):
    """Return a ``DATABASES`` dict: an empty ``default`` plus one entry per panel.

    ``default`` stays empty on purpose: a query that no router answers then
    fails loudly (``ImproperlyConfigured``) instead of landing somewhere.
    """
    databases = {"default": {}}
    for alias in panels:
        url = environ.get(env_var(alias), "").strip()
        if url:
            config = dj_database_url.parse(url)
        else:
            try:
                Path(var_dir).mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # a read-only checkout: settings that need URLs say so; SQLite says so on connect
            path = Path(var_dir) / f"{alias}.sqlite3"
            config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}
        databases[alias] = _tune(config)
    return databases


def _tune(config):
    """Apply the console's per-engine defaults to one parsed database entry."""
    config = dict(config)
    # Every alias is independent: no alias waits for `default` in tests.
    config.setdefault("TEST", {})["DEPENDENCIES"] = []
    engine = config["ENGINE"]
    if engine == "django.db.backends.mysql":
        options = config.setdefault("OPTIONS", {})
        options.setdefault("charset", "utf8mb4")
        options.setdefault("init_command", "SET sql_mode='STRICT_TRANS_TABLES'")
        if config.get("HOST", "") in LOCAL_HOSTS and not any(k.startswith("ssl") for k in options):
            options["ssl_disabled"] = True
        config["CONN_MAX_AGE"] = CONN_MAX_AGE
        config["CONN_HEALTH_CHECKS"] = True
        config["TEST"].setdefault("CHARSET", "utf8mb4")
        config["TEST"].setdefault("COLLATION", "utf8mb4_unicode_ci")
    elif engine == "django.db.backends.sqlite3":
        # WAL lets the dev server read while a command writes; the busy
        # timeout turns "database is locked" into a short wait.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("timeout", 20)
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        # SQLite has no SELECT ... FOR UPDATE: a transaction takes the write lock when it begins, so a
        # save's conflict check and its write are one step (admin_site.concurrency).
        options.setdefault("transaction_mode", "IMMEDIATE")
    return config


def panel_apps(panels):
    """Map each app label to the aliases that hold it, in configuration order."""
    holders = {}
    for alias, panel in panels.items():
        for app_label in panel["apps"]:
            holders.setdefault(app_label, []).append(alias)
    return holders


def cache_settings(url):
    """Return a ``CACHES`` dict for ``url``: this process's memory when empty, else that Redis server.

    Local memory is private to each server process; a Redis URL
    (``redis://host:6379/0``, ``rediss://`` for TLS, ``unix:///path.sock``) lets
    every process of every host share one cache.
    """
    url = url.strip()
    if not url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "console"}}
    scheme = urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        # Never echo the URL: it may hold a password.
        schemes = ", ".join(f"{name}://" for name in REDIS_SCHEMES)
        raise ImproperlyConfigured(f"CONSOLE_CACHE_URL must be a {schemes} URL, not {scheme or 'no'} scheme.")
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "console",
            "OPTIONS": dict(CACHE_TIMEOUTS),
        }
    }
