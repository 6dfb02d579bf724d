"""A background worker on the test databases, with slow chunks of 10 rows: killed mid-import by a test.

Run by ``tests/test_background_transfers.py`` as a subprocess (MariaDB only: it
opens the test databases the test process created).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402
from django.conf import settings  # noqa: E402

for alias in settings.CONSOLE_DATABASES:
    settings.DATABASES[alias]["NAME"] = settings.DATABASES[alias]["TEST"]["NAME"]
settings.CONSOLE_IMPORT_DIR = os.environ["CONSOLE_IMPORT_DIR"]
django.setup()

from admin_site.transfers import imports, tasks  # noqa: E402
from admin_site.transfers.resources import DatabaseModelResource  # noqa: E402

imports.CHUNK_ROWS = 10
tasks.HEARTBEAT_EVERY = 0.05
original = DatabaseModelResource.import_chunk


def slow(self, dataset, dry_run, **kwargs):
    time.sleep(0.2)
    return original(self, dataset, dry_run, **kwargs)


DatabaseModelResource.import_chunk = slow

from django.core.management import call_command  # noqa: E402

call_command("db_worker", batch=True, startup_delay=False, reload=False, interval=0.1)
