"""Test settings: the console's panels plus an ``archive`` copy of ``customers``.

SQLite by default (in-memory test databases).  With ``CONSOLE_TEST_DATABASE_URL``
set (a MySQL URL without a database name, credentials in the URL or an option
file named by ``?read_default_file=``) every alias runs on that server instead.
"""

import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

from admin_site.conf import cache_settings, database_settings, env_var
from console.settings import *  # noqa: F403
from console.settings import CONSOLE_DATABASES as BASE_DATABASES

# Same model, two databases: a panel on an archive copy of the customers schema.
CONSOLE_DATABASES = {
    **BASE_DATABASES,
    "archive": {"title": "Customer archive", "colour": "#6b21a8", "apps": ["customers"]},
}
# A test-only model (tests/importmodels) in two databases: the console's import path into one, stock's into the other.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.importmodels"]  # noqa: F405
for _alias in ("customers", "archive"):
    CONSOLE_DATABASES[_alias] = {
        **CONSOLE_DATABASES[_alias],
        "apps": [*CONSOLE_DATABASES[_alias]["apps"], "importmodels"],
    }

TEST_DATABASE_URL = os.environ.get("CONSOLE_TEST_DATABASE_URL", "").strip()
#: Lets two checkouts share one MariaDB server without sharing test databases.
TEST_DB_PREFIX = os.environ.get("CONSOLE_TEST_DB_PREFIX", "console")


def _alias_url(url, alias):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{TEST_DB_PREFIX}_{alias}"))


_environ = (
    {env_var(alias): _alias_url(TEST_DATABASE_URL, alias) for alias in CONSOLE_DATABASES} if TEST_DATABASE_URL else {}
)
DATABASES = database_settings(CONSOLE_DATABASES, tempfile.gettempdir(), _environ)
if TEST_DATABASE_URL:
    for _alias in CONSOLE_DATABASES:
        DATABASES[_alias]["TEST"]["NAME"] = f"test_{TEST_DB_PREFIX}_{_alias}"
        # A request per test would otherwise keep connections open across the suite.
        DATABASES[_alias]["CONN_MAX_AGE"] = 0

# Replicas come only from the tests that add one (tests/test_replicas.py), never from this shell's environment.
CONSOLE_REPLICAS = {}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# This process's memory, whatever CONSOLE_CACHE_URL says: a shared Redis would carry entries between runs.
# tests/test_caches.py runs the console on Redis in processes of its own.
CACHES = cache_settings("")

# Uploads between preview and confirm: a private directory per test run.
CONSOLE_IMPORT_DIR = tempfile.mkdtemp(prefix="console-test-imports-")
