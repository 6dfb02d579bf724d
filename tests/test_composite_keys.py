"""Composite-key and key-less legacy tables on the legacy panel (``admin_site.composite``).

``PRODUCT_PRICE`` (key: product code + region) gets every page a table with a
single key gets; ``STOCK_MOVE`` (no key at all) is listed, filtered and
exported, and every write path is refused.
"""

import csv
import datetime
import html
import io
import json
import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import quote
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.urls import NoReverseMatch, reverse

from admin_site.composite import KEYLESS_NOTICE, key_text, url_key
from admin_site.transfers.formats import IMPORT_FORMATS
from console.legacy import demo
from console.legacy.models import ProductPrice, StockMove
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url, capture_queries, export_file, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

#: Characters a key must survive in a URL: the admin's own escape, a path separator, a list separator, a percent
#: sign, JSON's quote, non-ASCII.
AWKWARD = 'A/B,C%_"ü'
CSV = str([cls.__name__.lower() for cls in IMPORT_FORMATS].index("csv"))


def price(code, region, amount="10.00", currency="EUR", discontinued=False):
    return ProductPrice.objects.using("legacy").create(
        product_code=code,
        region=region,
        price=Decimal(amount),
        currency=currency,
        from_field=datetime.date(2026, 1, 1),
        discontinued=discontinued,
    )


def stored(code, region):
    return ProductPrice.objects.using("legacy").filter(product_code=code, region=region).first()


def page_text(response):
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def url(view, *args, model=ProductPrice, **query):
    return admin_url("legacy", model, view, *args, **query)


def assert_only_legacy_written(log):
    """Rows were written to ``legacy`` and, elsewhere, only to the console's own tables (the admin log)."""
    assert log.writes_on("legacy")
    assert not log.leaks_from("legacy"), log.leaks_from("legacy")


@pytest.fixture
def prices():
    return [
        price("P-1", "DE", "10.00"),
        price("P-1", "UK", "9.00", "GBP"),
        price("P-2", "DE", "20.00", discontinued=True),
        price(AWKWARD, "EU/1", "30.00"),
    ]


# -- the key in URLs ---------------------------------------------------------------------


def test_key_goes_into_urls_as_quoted_json_and_round_trips(root_client, prices):
    awkward = prices[3]
    assert key_text(awkward) == json.dumps([AWKWARD, "EU/1"], ensure_ascii=False)
    change = url("change", url_key(awkward))
    assert "/" not in url_key(awkward) and "%" not in url_key(awkward).replace("_", "")
    response = root_client.get(change)
    assert response.status_code == 200
    assert response.context["original"] == awkward
    # The list links to that very URL.
    listing = root_client.get(url("changelist"))
    assert change in listing.content.decode()


@pytest.mark.parametrize(
    "object_id",
    [
        pytest.param("P-1", id="not-json"),
        pytest.param('["P-1"]', id="missing-part"),
        pytest.param('["P-1", "DE", "X"]', id="too-many-parts"),
        pytest.param('["P-1", 5]', id="number-for-text"),
        pytest.param('["P-1", null]', id="null-part"),
        pytest.param('{"product_code": "P-1", "region": "DE"}', id="object"),
        pytest.param("5", id="number"),
        pytest.param("[" * 5000, id="deep"),
        pytest.param('["P-1", "' + "D" * 20 + '"]', id="longer-than-column"),
        pytest.param('["\\ud800", "DE"]', id="lone-surrogate-escape"),
    ],
)
@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_malformed_keys_are_404(root_client, prices, object_id, view):
    response = root_client.get(url(view, quote(object_id)))
    if object_id.endswith('"]') and "D" * 20 in object_id:
        # Well-formed but naming no row: Django's "not found" redirect, as for any table.
        assert response.status_code == 302
    else:
        assert response.status_code == 404


def test_wrong_escaping_is_404(root_client, prices):
    right = url_key(prices[0])
    for wrong in (right.replace("_22", "_2"), right.replace("_5B", "_ZZ"), right + "_"):
        assert root_client.get(url("change", wrong)).status_code == 404
    # Unescaped JSON (only "/" cannot go unescaped in a path) names the row as well.
    assert root_client.get(url("change", '["P-1","DE"]')).status_code == 200


def test_a_post_with_a_malformed_key_is_404_and_writes_nothing(root_client, prices):
    with capture_queries() as log:
        response = root_client.post(url("delete", quote('["P-1"]')), {"post": "yes"})
    assert response.status_code == 404
    assert not log.writes_on("legacy")
    assert stored("P-1", "DE") is not None


# -- list, search, filters, sorting --------------------------------------------------------


def test_list_search_filter_sort(root_client, prices):
    response = root_client.get(url("changelist"))
    cl = response.context["cl"]
    assert [p.pk for p in cl.result_list] == [(AWKWARD, "EU/1"), ("P-1", "DE"), ("P-1", "UK"), ("P-2", "DE")]
    # Ordered by the key fields themselves (a total order), not Django's "-pk".
    assert cl.get_ordering(response.wsgi_request, cl.root_queryset) == ["product_code", "region"]

    found = root_client.get(url("changelist", q="P-2")).context["cl"].result_list
    assert [p.pk for p in found] == [("P-2", "DE")]

    for query, expected in (
        ({"region": "UK"}, [("P-1", "UK")]),
        ({"currency": "GBP"}, [("P-1", "UK")]),
        ({"discontinued__exact": "1"}, [("P-2", "DE")]),
    ):
        cl = root_client.get(url("changelist", **query)).context["cl"]
        assert [p.pk for p in cl.result_list] == expected, query
    filters = {spec.title for spec in root_client.get(url("changelist")).context["cl"].filter_specs}
    assert filters == {"region", "currency", "discontinued"}

    # Sorting by price (column 3), descending; ties would fall back to the key.
    cl = root_client.get(url("changelist", o="-3")).context["cl"]
    assert [p.price for p in cl.result_list] == sorted((p.price for p in prices), reverse=True)


def test_list_pages_neither_skip_nor_repeat_rows(root_client, monkeypatch):
    from console.legacy.admin import ProductPriceAdmin

    monkeypatch.setattr(ProductPriceAdmin, "list_per_page", 3)
    for number in range(8):
        price(f"P-{number % 3}", f"R{number}", "5.00")
    seen = []
    for page in range(1, 4):
        seen += [p.pk for p in root_client.get(url("changelist", p=page, o="3")).context["cl"].result_list]
    assert sorted(seen) == sorted(ProductPrice.objects.using("legacy").values_list("product_code", "region"))


# -- view, change, add, delete -------------------------------------------------------------


def test_change_form_edits_the_row_in_legacy_only_and_history_shows_it(root_client, prices):
    awkward = prices[3]
    change = url("change", url_key(awkward))
    page = root_client.get(change)
    assert page.context["adminform"].form.fields.keys().isdisjoint({"product_code", "region"})  # read-only
    html = page.content.decode()
    assert url("history", url_key(awkward)) in html and url("delete", url_key(awkward)) in html
    data = form_data(page.content, "productprice_form")
    data["price"] = "31.50"
    with capture_queries() as log:
        response = root_client.post(change, data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert_only_legacy_written(log)
    assert stored(AWKWARD, "EU/1").price == Decimal("31.50")

    entry = LogEntry.objects.get(action_flag=CHANGE)
    assert entry.object_id == key_text(awkward)
    history = root_client.get(url("history", url_key(awkward)))
    assert history.status_code == 200
    assert [e.pk for e in history.context["action_list"]] == [entry.pk]
    assert "30.00" in page_text(history) and "31.50" in page_text(history)
    assert change in history.content.decode()  # the breadcrumb
    # The panel's Changes list and recent actions link to the row by the same key.
    assert change in root_client.get(reverse("legacy:changes")).content.decode()
    assert change in root_client.get(reverse("legacy:index")).content.decode()


def test_a_post_cannot_change_a_key_field(root_client, prices):
    change = url("change", url_key(prices[0]))
    data = form_data(root_client.get(change).content, "productprice_form")
    data.update(product_code="HIJACK", region="XX", price="11.00")
    assert root_client.post(change, data).status_code == 302
    assert stored("P-1", "DE").price == Decimal("11.00")
    assert stored("HIJACK", "XX") is None


def test_a_stale_change_form_is_refused(root_client, prices):
    change = url("change", url_key(prices[0]))
    data = form_data(root_client.get(change).content, "productprice_form")
    ProductPrice.objects.using("legacy").filter(product_code="P-1", region="DE").update(price=Decimal("12.00"))
    data["price"] = "13.00"
    response = root_client.post(change, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert stored("P-1", "DE").price == Decimal("12.00")


def test_add_sets_the_key_and_lands_in_legacy_only(root_client, prices):
    page = root_client.get(url("add"))
    assert {"product_code", "region"} <= set(page.context["adminform"].form.fields)
    data = form_data(page.content, "productprice_form")
    data.update(product_code="N/1,%", region="ÄT", price="7.25", currency="EUR", from_field="2026-02-01")
    with capture_queries() as log:
        response = root_client.post(url("add"), {**data, "_continue": "1"})
    assert response.status_code == 302
    assert_only_legacy_written(log)
    added = stored("N/1,%", "ÄT")
    assert added.price == Decimal("7.25")
    assert response.url == url("change", url_key(added))
    assert root_client.get(response.url).status_code == 200


def test_adding_an_existing_key_is_a_form_error(root_client, prices):
    data = form_data(root_client.get(url("add")).content, "productprice_form")
    data.update(product_code="P-1", region="DE", price="1.00", currency="EUR", from_field="2026-02-01")
    with capture_queries() as log:
        response = root_client.post(url("add"), data)
    assert response.status_code == 200
    assert "already exists" in page_text(response)
    assert not log.writes_on("legacy")
    assert stored("P-1", "DE").price == Decimal("10.00")


def test_delete_with_confirmation(root_client, prices):
    awkward = prices[3]
    delete = url("delete", url_key(awkward))
    confirmation = root_client.get(delete)
    assert confirmation.status_code == 200
    html = confirmation.content.decode()
    assert url("change", url_key(awkward)) in html  # breadcrumb and the summary's link
    assert stored(AWKWARD, "EU/1") is not None
    with capture_queries() as log:
        response = root_client.post(delete, {"post": "yes"})
    assert response.status_code == 302
    assert_only_legacy_written(log)
    assert stored(AWKWARD, "EU/1") is None
    assert ProductPrice.objects.using("legacy").count() == 3


def test_delete_selected_action_deletes_only_the_ticked_rows(root_client, prices):
    listing = root_client.get(url("changelist"))
    boxes = re.findall(r'name="_selected_action" value="([^"]*)"', listing.content.decode())
    assert len(boxes) == 4
    ticked = [html.unescape(box) for box in boxes if "P-1" in box and "UK" in box or AWKWARD[:3] in html.unescape(box)]
    assert len(ticked) == 2
    confirm = root_client.post(url("changelist"), {"action": "delete_selected", "_selected_action": ticked, "index": 0})
    assert confirm.status_code == 200
    assert "Are you sure" in page_text(confirm)
    data = form_data(confirm.content, None)
    posted = {k: v for k, v in data.items() if k != "csrfmiddlewaretoken"}
    assert sorted(posted["_selected_action"]) == sorted(ticked)
    with capture_queries() as log:
        response = root_client.post(url("changelist"), posted)
    assert response.status_code == 302
    assert_only_legacy_written(log)
    left = sorted(ProductPrice.objects.using("legacy").values_list("product_code", "region"))
    assert left == [("P-1", "DE"), ("P-2", "DE")]


def test_an_action_with_malformed_boxes_touches_nothing(root_client, prices):
    boxes = ["P-1", '["P-1"]', "[[[", '["\\ud800", "DE"]']
    response = root_client.post(
        url("changelist"), {"action": "delete_selected", "_selected_action": boxes, "index": 0, "post": "yes"}
    )
    assert response.status_code in (200, 302)
    assert ProductPrice.objects.using("legacy").count() == 4


# -- export and import ---------------------------------------------------------------------


def exported_rows(client, model):
    response = export_file(client, "legacy", model)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def test_export_contains_the_rows_with_their_key_columns(root_client, prices):
    rows = exported_rows(root_client, ProductPrice)
    assert {(row["product_code"], row["region"]) for row in rows} == {p.pk for p in prices}
    awkward = next(row for row in rows if row["product_code"] == AWKWARD)
    assert awkward["price"] == "30.00"


def upload(client, content, resource=0):
    data = {"format": CSV, "import_file": SimpleUploadedFile("prices.csv", content.encode())}
    page = client.get(url("import"))
    if "resource" in form_data(page.content):
        data["resource"] = str(resource)
    return client.post(url("import"), data)


def confirm(client, preview):
    fields = form_data(preview.content)
    data = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert "import_file_name" in data, "the preview offered no confirm form"
    return client.post(url("process_import"), data)


HEADER = "product_code,region,price,currency,from_field,discontinued\n"


def test_import_creates_and_updates_rows_matched_on_the_key(root_client, prices):
    content = (
        HEADER
        + f'P-1,DE,11.00,EUR,2026-01-01,0\nP-1,UK,9.00,GBP,2026-01-01,0\n"{AWKWARD}",EU/2,1.00,EUR,2026-03-01,1\n'
    )
    content = content.replace(f'"{AWKWARD}"', '"' + AWKWARD.replace('"', '""') + '"')
    preview = upload(root_client, content)
    assert preview.status_code == 200, page_text(preview)
    text = page_text(preview)
    # P-1/UK is as stored: unchanged, not updated.
    assert "1 new" in text and "1 updated" in text and "1 unchanged" in text, text
    assert stored("P-1", "DE").price == Decimal("10.00")  # the preview wrote nothing
    with capture_queries() as log:
        response = confirm(root_client, preview)
    assert response.status_code == 302
    assert_only_legacy_written(log)
    assert stored("P-1", "DE").price == Decimal("11.00")
    assert stored(AWKWARD, "EU/2").discontinued is True
    assert stored(AWKWARD, "EU/1").price == Decimal("30.00")  # same product, other region: untouched
    assert ProductPrice.objects.using("legacy").count() == 5
    # The import's entries name each row by the key its pages use: the history of a row shows it.
    history = root_client.get(url("history", url_key(stored("P-1", "DE"))))
    assert "through import" in page_text(history), page_text(history)


def test_update_only_import_with_an_unknown_key_is_a_row_error_and_writes_nothing(root_client, prices):
    page = root_client.get(url("import"))
    choices = page.content.decode()
    assert "Update existing rows only" in choices
    assert "Add new rows and update existing ones" in choices and "ProductPriceResource" not in choices
    content = HEADER + "P-1,DE,99.00,EUR,2026-01-01,0\nP-9,DE,1.00,EUR,2026-01-01,0\n"
    with capture_queries() as log:
        preview = upload(root_client, content, resource=1)
    assert preview.status_code == 200
    text = page_text(preview)
    assert "No product price with product code 'P-9' and region 'DE' in this database" in text, text
    assert "import_file_name" not in form_data(preview.content)  # nothing to confirm
    assert not log.writes_on("legacy")
    assert stored("P-1", "DE").price == Decimal("10.00")
    assert stored("P-9", "DE") is None


def test_update_only_import_updates_known_keys(root_client, prices):
    preview = upload(root_client, HEADER + "P-1,DE,99.00,EUR,2026-01-01,0\n", resource=1)
    assert "import_file_name" in form_data(preview.content), page_text(preview)
    assert confirm(root_client, preview).status_code == 302
    assert stored("P-1", "DE").price == Decimal("99.00")


# -- the key-less table --------------------------------------------------------------------


@pytest.fixture
def moves():
    demo.load(using="legacy", customers=12)
    return list(StockMove.objects.using("legacy").all())


def test_keyless_list_shows_the_notice_and_no_row_links(root_client, moves):
    response = root_client.get(url("changelist", model=StockMove))
    assert response.status_code == 200
    assert KEYLESS_NOTICE in page_text(response)
    html = response.content.decode()
    assert "/change/" not in html and "_selected_action" not in html
    assert url("changelist", model=StockMove) + "import/" not in html
    cl = response.context["cl"]
    assert cl.result_count == len(moves) == 62


def test_keyless_list_pages_in_a_total_order_and_keeps_identical_rows(root_client, moves, monkeypatch):
    from console.legacy.admin import StockMoveAdmin

    monkeypatch.setattr(StockMoveAdmin, "list_per_page", 7)
    seen = []
    page = 1
    while True:
        response = root_client.get(url("changelist", model=StockMove, p=page))
        if response.status_code != 200 or not response.context["cl"].result_list:
            break
        seen += [tuple(m.pk) for m in response.context["cl"].result_list]
        if page >= response.context["cl"].paginator.num_pages:
            break
        page += 1
    assert sorted(seen) == sorted(tuple(m.pk) for m in moves)  # duplicates included, none skipped or repeated
    assert len(seen) - len(set(seen)) == 2


def test_keyless_filter_and_export(root_client, moves):
    clerk = moves[0].username
    cl = root_client.get(url("changelist", model=StockMove, username=clerk)).context["cl"]
    assert {m.username for m in cl.result_list} == {clerk}
    assert cl.result_count == sum(1 for m in moves if m.username == clerk)
    rows = exported_rows(root_client, StockMove)
    assert len(rows) == len(moves)
    assert sorted((r["product_code"], int(r["quantity"]), r["username"]) for r in rows) == sorted(
        (m.product_code, m.quantity, m.username) for m in moves
    )


def test_keyless_refuses_every_write_path(root_client, moves):
    move = moves[0]
    key = quote(json.dumps([move.moved_at.isoformat(), move.product_code, str(move.quantity), move.username]))
    base = url("changelist", model=StockMove)
    model = StockMove._meta
    for view in ("add", "change", "delete", "history", "import", "process_import"):
        with pytest.raises(NoReverseMatch):  # no such URL name exists
            reverse(
                f"legacy:{model.app_label}_{model.model_name}_{view}",
                args=[key] if view in ("change", "delete", "history") else [],
            )
    with capture_queries() as log:
        for path in ("add/", f"{key}/change/", f"{key}/delete/", f"{key}/history/", "import/", "process_import/"):
            assert root_client.get(base + path).status_code == 404, path
            assert root_client.post(base + path, {"post": "yes"}).status_code == 404, path
        listing = root_client.post(base, {"action": "delete_selected", "_selected_action": [key], "index": 0})
        assert listing.status_code == 405
    assert not log.writes_on("legacy")
    assert StockMove.objects.using("legacy").count() == len(moves)


def test_demo_stock_moves_hold_two_fully_identical_rows(moves):
    """The key-less table really holds duplicates (counted by the database itself, not through the model)."""
    with connections["legacy"].cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM STOCK_MOVE GROUP BY MOVED_AT, PRODUCT_CODE, QUANTITY, USERNAME "
            "HAVING COUNT(*) > 1) AS twice"
        )
        assert cursor.fetchone()[0] == 2


def test_a_key_twice_in_one_file_is_a_row_error_at_the_preview(root_client, prices):
    before = ProductPrice.objects.using("legacy").count()
    content = HEADER + "Z-1,AT,1.00,EUR,2026-01-01,0\nZ-1,AT,2.00,EUR,2026-01-01,0\n"

    preview = upload(root_client, content)

    text = page_text(preview)
    assert "The key Z-1, AT is also in row 2 of this file: a row is imported once." in text, text[-1500:]
    assert "Confirm import" not in text
    assert ProductPrice.objects.using("legacy").count() == before


def test_update_only_import_may_leave_out_every_column_but_the_key(root_client, prices):
    preview = upload(root_client, "product_code,region,price\nP-1,DE,12.50\n", resource=1)
    assert "Confirm import" in page_text(preview), page_text(preview)[-1500:]
    assert confirm(root_client, preview).status_code == 302
    row = stored("P-1", "DE")
    assert row.price == Decimal("12.50")
    assert (row.currency, row.discontinued) == ("EUR", False)  # left out of the file: kept as stored

    preview = upload(root_client, "product_code,price\nP-1,13.00\n", resource=1)
    assert "missing key columns: region" in page_text(preview)
