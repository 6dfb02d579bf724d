"""Settings of the console served by the e2e tests: production-like, the console's own panels.

The databases come from ``CONSOLE_DB_<ALIAS>`` as in production; the harness
points them at the session's MariaDB databases.  Static files are collected
into the run directory (``CONSOLE_STATIC_ROOT``) and served by Apache through
runmodwsgi's ``/static/`` alias.
"""

import os
from pathlib import Path

from console.settings import *  # noqa: F403

DEBUG = False
STATIC_ROOT = Path(os.environ["CONSOLE_STATIC_ROOT"])
WSGI_APPLICATION = "tests.e2e.wsgi.application"
