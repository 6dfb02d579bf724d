"""A 200,000-row CSV through the UI, under mod_wsgi-express on MariaDB, previewed and imported by the worker.

The session's server has no worker of its own; this module starts one as
``make run`` does (``admin_site.express.start_worker``: the daemon's account,
the same runtime and settings) and stops it at the end.  Over HTTP, the
upload answers at once with the progress page, which moves while the worker
previews and then imports; every row is there at the end.  A second run of the
same kind, cancelled mid-import, leaves nothing.
"""

import re
import time

import pytest

from admin_site.express import start_worker, stop_worker

CUSTOMERS = "/customers/customers/customer/"
ROWS = 200_000


@pytest.fixture(scope="module")
def worker(console):
    process = start_worker(console.runtime.python, console.runtime.code, console.server.env, console.runtime.user)
    yield process
    stop_worker(process)


def big_csv(tag, rows=ROWS):
    lines = ["name,email,country,status,tier"]
    lines += [f"Bulk {tag} {i},bulk-{tag}-{i}@example.com,DE,active,gold" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(client, name, content):
    form = client.get(CUSTOMERS + "import/")
    fields = {"format": form.option("format", "csv")}
    return client.submit(form, CUSTOMERS + "import/", fields, files={"import_file": (name, content)})


def state(page):
    """(status, rows done) as the progress page shows them."""
    status = re.search(r'data-status="(\w+)"', page.text).group(1)
    rows = int(re.search(r'id="transfer-rows">(\d+)<', page.text).group(1))
    return status, rows


def watch(client, path, until, timeout=600, stop=None):
    """Reload the progress page until its status is in ``until``; every (status, rows) it showed, in order."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(path)
        assert page.status == 200, (page.status, page.text[-500:])
        now = state(page)
        if not seen or seen[-1] != now:
            seen.append(now)
        if now[0] in until or (stop is not None and stop(now)):
            return page, seen
        time.sleep(0.5)
    raise AssertionError(f"{path} still at {seen[-1:]} after {timeout}s")


def count(console, tag):
    return console.rows("customers", "SELECT COUNT(*) FROM customers_customer WHERE email LIKE %s", f"bulk-{tag}-%")[0][
        0
    ]


def test_a_200000_row_csv_is_previewed_and_imported_in_the_background_and_a_cancelled_run_leaves_nothing(
    console, worker
):
    client = console.admin()
    started = time.monotonic()
    response = upload(client, "big.csv", big_csv("a"))
    assert response.status == 302, (response.status, response.text[-1000:])
    assert time.monotonic() - started < 30, "the upload answers at once, before any preview"
    progress = response.location.replace(console.url, "")
    page, seen = watch(client, progress, {"previewed", "rejected", "failed"})
    assert state(page) == ("previewed", ROWS), page.text[-2000:]
    assert f"{ROWS} new" in page.text
    assert any(0 < rows < ROWS for _status, rows in seen), f"the preview's progress never showed: {seen}"
    assert count(console, "a") == 0, "a preview writes nothing"

    confirm = client.submit(page, progress + "confirm/")
    assert confirm.status == 302
    page, seen = watch(client, progress, {"done", "rejected", "failed", "cancelled"})
    assert state(page)[0] == "done", page.text[-2000:]
    assert any(status == "running" and 0 < rows < ROWS for status, rows in seen), seen
    assert "rows/s" in page.text
    assert count(console, "a") == ROWS
    console.timings["background import: progress steps seen"] = len(seen)

    # A second run, cancelled while the worker imports: nothing of it stays.
    progress = upload(client, "second.csv", big_csv("b")).location.replace(console.url, "")
    page, _ = watch(client, progress, {"previewed", "rejected", "failed"})
    assert state(page)[0] == "previewed"
    client.submit(page, progress + "confirm/")
    page, _ = watch(client, progress, {"done", "failed", "cancelled"}, stop=lambda now: now[1] >= 20_000)
    assert state(page)[0] == "running", "the import ended before it could be cancelled"
    assert client.submit(page, progress + "cancel/").status == 302
    page, _ = watch(client, progress, {"done", "failed", "cancelled"})
    assert state(page)[0] == "cancelled", page.text[-2000:]
    assert count(console, "b") == 0
    assert count(console, "a") == ROWS
