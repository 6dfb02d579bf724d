"""Debian's Chromium through Playwright, launched one way for every browser test (never ``playwright install``).

A fresh profile per launch; the flags keep Chromium off this machine's closed network.  Playwright's
sync API runs an event loop while the browser is open: Django refuses ORM calls inside it, so a test
reads the database with raw connections (the e2e tests) or before it opens the browser.
"""

import contextlib
import os
import shutil
import tempfile

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # This machine's network is closed: without these, Chromium's own background traffic gets refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WIDTH, HEIGHT = 1280, 900


def missing(reason):
    """Skip, or fail under ``CONSOLE_E2E_REQUIRED=1`` (CI), where a browser test must not skip quietly."""
    if os.environ.get("CONSOLE_E2E_REQUIRED") == "1":
        pytest.fail(f"{reason} (CONSOLE_E2E_REQUIRED=1: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def chromium(base_url, **options):
    """A Chromium context at 1280x900 on ``base_url``; extra keyword arguments go to Playwright's launch."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not shutil.which(executable):
        missing("chromium not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -r requirements-dev.txt)")
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                args=CHROMIUM_ARGS,
                headless=True,
                base_url=base_url,
                viewport={"width": WIDTH, "height": HEIGHT},
                **options,
            )
            context.set_default_timeout(20_000)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
