"""Each log line is written once, with the development settings `make run` uses and in production."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ALIASES = ("USERS", "CUSTOMERS", "LEGACY")
REPO = Path(__file__).resolve().parent.parent
LOG_EACH = """
import logging, django
django.setup()
for name in ("django.request", "django.utils.autoreload", "admin_site.outages", "console"):
    logging.getLogger(name).warning("line from %s", name)
"""


@pytest.mark.parametrize("settings_module", ["console.settings", "console.settings_production"])
def test_every_log_line_is_written_once(settings_module, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_DEBUG": "1",
        # Production settings refuse to start without these; none is read by logging or connects.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "console.example",
        "CONSOLE_VAR_DIR": str(tmp_path),
        **{f"CONSOLE_DB_{alias}": f"mysql://127.0.0.1:3306/console_{alias.lower()}" for alias in ALIASES},
    }
    result = subprocess.run(
        [sys.executable, "-c", LOG_EACH], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    if settings_module.endswith("production") and result.returncode:
        pytest.fail(f"production settings did not load: {result.stderr[-2000:]}")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("django.request", "django.utils.autoreload", "admin_site.outages", "console"):
        assert result.stderr.count(f"line from {name}") == 1, (name, result.stderr)
