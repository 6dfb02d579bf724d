"""Every list, change form and the import preview fit a 1280x900 laptop window in Chromium.

Runs in the normal suite on Django's live server (SQLite or MariaDB) with demo data, when Debian's
chromium and the ``playwright`` package are there; without them it skips, and under CI
(``CONSOLE_E2E_REQUIRED=1``) it fails.  A page fits when the document does not scroll sideways and no
table header cell (results, inlines, import preview) ends right of what can be seen of it: the window,
or the box that clips it (Django's results box scrolls on its own, hiding columns under the filters).
Screenshots go to ``test-artifacts/layout/``.
"""

import json
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.urls import reverse

from admin_site.sites import all_sites
from tests.browser import WIDTH, chromium
from tests.conftest import ALL_DATABASES

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "layout"
CUSTOMERS_CSV = REPO / "console" / "demo" / "files" / "customers.csv"

#: Page width, and every table header cell whose right edge is past the window (text, right edge).
MEASURE = """() => {
    const width = window.innerWidth;
    // Where a cell can still be seen: the window, narrowed by every ancestor that clips or scrolls.
    const visibleRight = (element) => {
        let right = width;
        for (let box = element.parentElement; box; box = box.parentElement) {
            if (getComputedStyle(box).overflowX !== 'visible') {
                right = Math.min(right, box.getBoundingClientRect().left + box.clientLeft + box.clientWidth);
            }
        }
        return right;
    };
    const clipped = [...document.querySelectorAll('#content table th')]
        .filter(th => th.offsetParent !== null)
        .map(th => [th.innerText.trim().slice(0, 30), Math.round(th.getBoundingClientRect().right), visibleRight(th)])
        .filter(([, right, visible]) => right > visible + 1)
        .map(([text, right]) => [text, right]);
    return {width, scrollWidth: document.documentElement.scrollWidth, clipped};
}"""


@pytest.fixture
def demo_data():
    """The demo, small; the legacy tables are unmanaged, so flushing leaves their rows: empty them after."""
    call_command("load_demo_data", customers=120, users=8, legacy=40, seed=3, batch_size=60, verbosity=0)
    yield
    legacy = connections["legacy"]
    tables = set(legacy.introspection.table_names(include_views=False))
    with legacy.cursor() as cursor:
        for model in apps.get_app_config("legacy").get_models():
            if model._meta.db_table in tables:
                cursor.execute(f"DELETE FROM {legacy.ops.quote_name(model._meta.db_table)}")


def changelists():
    """(panel, label, changelist URL) of every registered model of every panel."""
    return [
        (site.name, f"{site.name}-{model._meta.app_label}-{model._meta.model_name}", url)
        for site in all_sites().values()
        for model in apps.get_models(include_auto_created=True)
        if site.is_registered(model)
        for url in [reverse(f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist")]
    ]


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_every_list_change_form_and_the_import_preview_fit_1280px(live_server, client, superuser, demo_data):
    from admin_site.models import TransferRecord
    from console.customers.models import Customer

    client.force_login(superuser)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    lists = changelists()
    customers_import = reverse("customers:customers_customer_import")
    transfers = reverse("users:admin_site_transferrecord_changelist")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    measured = {}
    # Playwright's loop runs while the browser is open: no ORM call in this block (Django refuses them).
    with chromium(live_server.url) as context:
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        page = context.pages[0] if context.pages else context.new_page()

        def measure(label, url):
            response = page.goto(url)
            assert response.status == 200, f"{label}: {url} answered {response.status}"
            measured[label] = page.evaluate(MEASURE)
            page.screenshot(path=str(ARTIFACTS / f"{label}.png"), full_page=True)

        for _panel, label, url in lists:
            measure(label, url)
            link = page.locator("#result_list tbody tr a[href]").first
            if link.count():
                measure(f"{label}-change", link.get_attribute("href"))
        # "By city" has more than 15 values: a select, and choosing one goes to that city's list.
        page.goto(reverse("customers:customers_customer_changelist"))
        city = page.locator('details[data-filter-title="city"] select.filter-select')
        chosen = city.locator("option").nth(3).inner_text()
        city.select_option(label=chosen)
        page.wait_for_url("**addresses__city=*")
        city_page = page.url
        page.goto(customers_import)
        page.set_input_files("input[name=import_file]", str(CUSTOMERS_CSV))
        page.select_option("select[name=format]", label="csv")
        page.locator("#content form [type=submit]").first.click()
        page.wait_for_load_state()
        assert page.locator("input[name=import_file_name]").count(), "the import preview offered no confirm"
        measured["customers-import-preview"] = page.evaluate(MEASURE)
        page.screenshot(path=str(ARTIFACTS / "customers-import-preview.png"), full_page=True)
        # Confirmed, the import leaves a transfer record: its list, with a row, fits too.
        page.locator("input[name=confirm]").click()
        page.wait_for_load_state()
        measure("users-transferrecord-after-import", transfers)
    (ARTIFACTS / "widths.json").write_text(json.dumps(measured, indent=1, sort_keys=True))

    assert Customer.objects.using("customers").count() == 128  # the 8 rows of customers.csv, confirmed
    assert TransferRecord.objects.using("users").exists()  # so its list was measured with a row
    city_rows = Customer.objects.using("customers").filter(addresses__city=chosen).distinct().count()
    assert city_rows and f"addresses__city={chosen}".replace(" ", "+") in city_page.replace("%20", "+")
    pages = {label for _panel, label, _url in lists}
    assert pages <= set(measured) and any(label.endswith("-change") for label in measured)
    too_wide = {
        label: (m["scrollWidth"], m["clipped"])
        for label, m in measured.items()
        if m["scrollWidth"] > m["width"] or m["clipped"]
    }
    assert not too_wide, f"pages wider than {WIDTH}px (document width, clipped header cells): {too_wide}"
