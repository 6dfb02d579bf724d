"""A person's session in Debian's Chromium (Playwright, headless) against the console under mod_wsgi.

Log in, see each panel with its database banner, search and filter customers,
edit one and find the change in MariaDB, import a CSV through the form,
confirm, see the rows, export and read the downloaded file.  Screenshots of the
key pages go to ``test-artifacts/`` (``browser-*.png``).
"""

import csv
import io
import uuid

import pytest

from tests.browser import chromium
from tests.e2e.conftest import PANELS

CUSTOMERS = "/customers/customers/customer/"


@pytest.fixture(scope="module")
def page(console):
    """One Chromium tab on a fresh profile.  Module-scoped: Playwright's event loop must be gone before
    anything else in this process talks to Django's database layer (it refuses to run inside a loop)."""
    with chromium(console.url, accept_downloads=True) as context:
        yield context.pages[0] if context.pages else context.new_page()


@pytest.fixture
def shot(page, artifacts):
    def take(name):
        page.screenshot(path=str(artifacts / f"browser-{name}.png"), full_page=True)

    return take


def banner(page):
    band = page.locator("#panel-band")
    return band.get_attribute("data-database"), band.inner_text()


def log_in(page, console, panel, username="e2e-admin"):
    """Password, then the second factor every panel of the e2e server asks for (the fixture device's code)."""
    if "/login/" not in page.url:
        page.goto(f"/{panel}/")
    page.fill("#id_username", username)
    page.fill("#id_password", console.password)
    page.click("input[type=submit]")
    page.wait_for_url(f"**/{panel}/otp/verify/**")
    page.fill("#id_code", console.otp_code(username))
    page.click("#otp-form input[type=submit]")
    page.wait_for_url(f"**/{panel}/")


def test_a_session_in_chromium(console, page, shot):
    # Log in on the customers panel.
    page.goto("/customers/")
    assert "/customers/login/" in page.url
    assert banner(page)[0] == "customers"
    shot("01-login")
    log_in(page, console, "customers")

    # The console home, then every panel with its database banner.
    page.goto("/")
    for panel in PANELS:
        assert page.locator(f'[data-alias="{panel}"]').count() >= 1
    shot("02-home")
    for panel in PANELS:
        page.goto(f"/{panel}/")
        alias, text = banner(page)
        assert alias == panel and f"Database {panel}" in text, text
        shot(f"03-panel-{panel}")

    # Search, then filter by the customer's status.
    ((pk, name, email, status),) = console.rows(
        "customers", "SELECT id, name, email, status FROM customers_customer ORDER BY id LIMIT 1"
    )
    page.goto(CUSTOMERS)
    assert banner(page)[0] == "customers"
    page.fill("#searchbar", email)
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=*")
    page.locator("#changelist-filter").get_by_role("link", name=status, exact=False).first.click()
    page.wait_for_url(f"**status__exact={status}*")
    assert "q=" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and email in rows.first.inner_text()
    shot("04-customers-search-filter")

    # Edit the customer; the change is in the customers database.
    rows.first.locator("th a").click()
    page.wait_for_url(f"**{CUSTOMERS}{pk}/change/**")
    page.fill("#id_name", name + " (edited in Chromium)")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert console.rows("customers", "SELECT name FROM customers_customer WHERE id = %s", pk) == (
        (name + " (edited in Chromium)",),
    )

    # Import a CSV through the form: preview, confirm, see the rows.
    tag = uuid.uuid4().hex[:8]
    content = "name,email,country,status,tier\n" + "".join(
        f"Browser {tag} {i},browser-{tag}-{i}@example.com,FR,lead,silver\n" for i in range(2)
    )
    page.goto(CUSTOMERS + "import/")
    page.set_input_files(
        "input[name=import_file]",
        files=[{"name": f"browser-{tag}.csv", "mimeType": "text/csv", "buffer": content.encode()}],
    )
    page.select_option("select[name=format]", label="csv")
    page.locator("form[enctype='multipart/form-data'] input[type=submit]").click()
    totals = page.locator("#import-totals")
    totals.wait_for()
    assert "2 new" in totals.inner_text()
    assert not console.rows("customers", "SELECT id FROM customers_customer WHERE email LIKE %s", f"browser-{tag}-%")
    shot("05-import-preview")
    page.click("input[name=confirm]")
    page.wait_for_url(f"**{CUSTOMERS}")
    page.fill("#searchbar", f"browser-{tag}")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=*")
    assert page.locator("#result_list tbody tr").count() == 2
    shot("06-imported-rows")
    query = "SELECT email, country FROM customers_customer WHERE email LIKE %s ORDER BY email"
    stored = console.rows("customers", query, f"browser-{tag}-%")
    assert stored == ((f"browser-{tag}-0@example.com", "FR"), (f"browser-{tag}-1@example.com", "FR"))

    # Export what the list shows and read the downloaded file.
    page.goto(CUSTOMERS + f"export/?q=browser-{tag}")
    page.select_option("select[name=format]", label="csv")
    shot("07-export")
    with page.expect_download() as download_info:
        page.locator("form[method=POST] input[type=submit], form[method=post] input[type=submit]").last.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8-sig") as f:
        exported = list(csv.DictReader(io.StringIO(f.read())))
    assert sorted(row["email"] for row in exported) == [f"browser-{tag}-0@example.com", f"browser-{tag}-1@example.com"]
