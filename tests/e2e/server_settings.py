"""Settings of the console served by the e2e tests: production-like, the console's own panels.

The databases come from ``CONSOLE_DB_<ALIAS>`` as in production; the harness
points them at the session's MariaDB databases.  Static files are collected
into the run directory (``CONSOLE_STATIC_ROOT``) and served by Apache through
runmodwsgi's ``/static/`` alias.  Every panel requires the second factor, as in production.
"""

import os
from pathlib import Path

from console.settings import *  # noqa: F403
from console.settings import CONSOLE_DATABASES as BASE_DATABASES

# As production: every panel asks for the second factor (the harness's clients answer it, tests.e2e.client).
CONSOLE_DATABASES = {alias: {**panel, "require_otp": True} for alias, panel in BASE_DATABASES.items()}

DEBUG = False
STATIC_ROOT = Path(os.environ["CONSOLE_STATIC_ROOT"])
WSGI_APPLICATION = "tests.e2e.wsgi.application"
