"""A 200,000-row CSV imported through the UI in Chromium, under mod_wsgi-express on MariaDB, by the worker.

The session's server has no worker of its own; this module starts one as
``make run`` does (``admin_site.express.start_worker``: the daemon's account,
the same runtime and settings) and stops it at the end.  In the browser, the
import form's upload answers at once with the progress page, which reloads
itself and moves while the worker previews and then imports; every row is
there at the end.  A second run, cancelled mid-import with the page's button,
leaves nothing.
"""

import time

import pytest

from admin_site.express import start_worker, stop_worker
from tests.e2e import test_browser
from tests.e2e.test_browser import log_in

# Chromium on a fresh profile, as the other browser tests launch it (module-scoped there and here).
page = test_browser.page
shot = test_browser.shot

CUSTOMERS = "/customers/customers/customer/"
ROWS = 200_000
ENDED = {"previewed", "rejected", "failed", "done", "cancelled"}


@pytest.fixture(scope="module")
def worker(console):
    process = start_worker(console.runtime.python, console.runtime.code, console.server.env, console.runtime.user)
    yield process
    stop_worker(process)


def big_csv(tag, rows=ROWS):
    lines = ["name,email,country,status,tier"]
    lines += [f"Bulk {tag} {i},bulk-{tag}-{i}@example.com,DE,active,gold" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(tab, name, content):
    """Choose the file on the import form and submit it, as a person would; the browser lands on the progress tab."""
    tab.goto(CUSTOMERS + "import/")
    tab.set_input_files("input[name=import_file]", files=[{"name": name, "mimeType": "text/csv", "buffer": content}])
    tab.select_option("select[name=format]", label="csv")
    started = time.monotonic()
    tab.locator("#content form [type=submit]").first.click()
    tab.wait_for_selector("#transfer")
    return time.monotonic() - started


def state(tab):
    """(status, rows done) as the page on screen shows them; None while it is reloading itself."""
    from playwright.sync_api import Error

    try:
        status = tab.locator("#transfer").get_attribute("data-status", timeout=5_000)
        rows = tab.locator("#transfer-rows").inner_text(timeout=5_000)
    except Error:  # the page's own two-second reload replaced the document between the two reads
        return None
    return status, int(rows)


def watch(tab, until, timeout=900, stop=None):
    """Read the progress page (it reloads itself) until its status is in ``until``; every (status, rows) it showed."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = state(tab)
        if now is not None:
            if not seen or seen[-1] != now:
                seen.append(now)
            if now[0] in until or (stop is not None and stop(now)):
                return seen
        time.sleep(0.25)
    raise AssertionError(f"the progress page still shows {seen[-1:]} after {timeout}s")


def press(tab, button, until):
    """Click a progress page button; a click lost to the page's own reload is clicked again."""
    for _ in range(5):
        try:
            tab.locator(button).click(timeout=5_000)
            tab.wait_for_function(
                "(wanted) => { const t = document.querySelector('#transfer');"
                " return t && wanted.includes(t.dataset.status)"
                " || !!document.querySelector('#transfer-cancel[disabled]'); }",
                arg=sorted(until),
                timeout=10_000,
            )
            return
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError or a navigation error: look again
            if state(tab) and state(tab)[0] in until:
                return
    raise AssertionError(f"{button} did not take: the page shows {state(tab)}")


def count(console, tag):
    return console.rows("customers", "SELECT COUNT(*) FROM customers_customer WHERE email LIKE %s", f"bulk-{tag}-%")[0][
        0
    ]


def test_a_200000_row_csv_is_previewed_and_imported_in_the_browser_and_a_cancelled_run_leaves_nothing(
    console, worker, page, shot
):
    log_in(page, console, "customers")
    assert upload(page, "big.csv", big_csv("a")) < 30, "the upload answers at once, before any preview"
    progress = page.url
    assert f"{CUSTOMERS}transfers/" in progress, progress
    seen = watch(page, ENDED - {"done", "cancelled"}, stop=lambda now: 0 < now[1] < ROWS)
    shot("transfer-01-previewing")
    seen += watch(page, ENDED)
    assert state(page) == ("previewed", ROWS), page.inner_text("#content")[-2000:]
    assert f"{ROWS} new" in page.inner_text("#import-totals")
    assert any(0 < rows < ROWS for _status, rows in seen), f"the preview's progress never showed: {seen}"
    assert count(console, "a") == 0, "a preview writes nothing"
    shot("transfer-02-previewed")

    press(page, "#transfer-confirm", {"queued", "running", "done"})
    seen = watch(page, ENDED, stop=lambda now: now[0] == "running" and 0 < now[1] < ROWS)
    assert "rows/s" in page.inner_text("#transfer-progress"), page.inner_text("#transfer-progress")
    shot("transfer-03-importing")
    seen += watch(page, ENDED)
    assert state(page)[0] == "done", page.inner_text("#content")[-2000:]
    assert any(status == "running" and 0 < rows < ROWS for status, rows in seen), seen
    assert page.url == progress, "the page stayed the same progress page from upload to done"
    assert count(console, "a") == ROWS
    shot("transfer-04-done")
    console.timings["background import in Chromium: progress steps seen"] = len(seen)

    # A second run, cancelled with the page's button while the worker imports: nothing of it stays.
    upload(page, "second.csv", big_csv("b"))
    watch(page, ENDED)
    assert state(page)[0] == "previewed"
    press(page, "#transfer-confirm", {"queued", "running", "done"})
    watch(page, ENDED, stop=lambda now: now[0] == "running" and now[1] >= 20_000)
    assert state(page)[0] == "running", "the import ended before it could be cancelled"
    press(page, "#transfer-cancel", {"cancelled", "failed", "done"})
    watch(page, ENDED)
    assert state(page)[0] == "cancelled", page.inner_text("#content")[-2000:]
    shot("transfer-05-cancelled")
    assert count(console, "b") == 0
    assert count(console, "a") == ROWS
