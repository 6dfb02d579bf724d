"""Importing from the panels: preview then confirm, on the panel's database, all or nothing.

Bad files each get a clear message naming the row/column, write nothing and
never answer with a 500.
"""

import io
import json
import re
import zipfile

import openpyxl
import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import Error as DatabaseDriverError
from django.db import OperationalError

from admin_site.models import TransferRecord
from admin_site.transfers.formats import IMPORT_FORMATS
from admin_site.transfers.uploads import sweep, upload_dir
from console.customers.models import Customer, Order, Tag
from console.legacy.models import Custmast
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import admin_url, capture_queries, export_file, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

FORMAT = {cls.__name__.lower(): str(i) for i, cls in enumerate(IMPORT_FORMATS)}
HEADER = "name,email,country,status,tier\n"


def upload(client, panel, model, content, name="customers.csv", fmt=None):
    fmt = fmt or name.rsplit(".", 1)[-1]
    content = content.encode() if isinstance(content, str) else content
    return client.post(
        admin_url(panel, model, "import"),
        {"format": FORMAT[fmt], "import_file": SimpleUploadedFile(name, content)},
    )


def confirm(client, panel, model, preview):
    fields = form_data(preview.content)
    data = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert "import_file_name" in data, "the preview offered no confirm form"
    return client.post(admin_url(panel, model, "process_import"), data)


def page_text(response):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def counts(model):
    return {alias: model._default_manager.using(alias).count() for alias in ("customers", "archive")}


# -- the happy path ------------------------------------------------------------------


@pytest.mark.parametrize("panel", ["customers", "archive"])
def test_preview_writes_nothing_anywhere_and_confirm_lands_only_in_the_panel(root_client, panel):
    vip = Tag(name="vip")
    vip.save(using=panel)
    csv = (
        HEADER.replace("\n", ",tags\n")
        + f"Ann,ANN@example.com,de,active,gold,{vip.pk}\nBob,bob@example.com,FR,lead,vip,\n"
    )
    with capture_queries() as log:
        preview = upload(root_client, panel, Customer, csv)
    assert preview.status_code == 200
    assert "2 new" in page_text(preview)
    assert not any(log.writes_on(alias) for alias in ALL_DATABASES), {a: log.writes_on(a) for a in ALL_DATABASES}
    assert counts(Customer) == {"customers": 0, "archive": 0}
    assert not TransferRecord.objects.exists()

    response = confirm(root_client, panel, Customer, preview)
    assert response.status_code == 302
    other = "archive" if panel == "customers" else "customers"
    assert Customer.objects.using(other).count() == 0
    ann = Customer.objects.using(panel).get(email="ann@example.com")
    assert (ann.country, [t.name for t in ann.tags.all()]) == ("DE", ["vip"])
    record = TransferRecord.objects.get()
    assert (record.kind, record.database, record.model, record.outcome) == (
        "import",
        panel,
        "customers.Customer",
        "success",
    )
    assert (record.rows_total, record.rows_new, record.username, record.file_format) == (2, 2, "root", "csv")
    # The history of the panel, and of no other, shows the additions.
    history = root_client.get(admin_url(panel, Customer, "history", ann.pk))
    assert len(history.context["action_list"]) == 1
    stored = form_data(preview.content)["import_file_name"][0]
    assert not (upload_dir() / stored).exists(), "the confirmed upload is removed"


def test_confirm_without_the_upload_is_a_message_not_a_500(root_client):
    preview = upload(root_client, "customers", Customer, HEADER + "Ann,ann@example.com,DE,active,gold\n")
    sweep(older_than=-1)  # another process cleaned up, or the upload expired
    response = confirm(root_client, "customers", Customer, preview)
    assert response.status_code == 302
    assert response["Location"] == admin_url("customers", Customer, "import")
    messages = [str(m) for m in root_client.get(response["Location"]).context["messages"]]
    assert any("no longer available" in m for m in messages)
    assert counts(Customer)["customers"] == 0


def test_confirm_refuses_a_file_name_outside_the_upload_directory(root_client):
    preview = upload(root_client, "customers", Customer, HEADER + "Ann,ann@example.com,DE,active,gold\n")
    fields = {k: v for k, v in form_data(preview.content).items() if k != "csrfmiddlewaretoken"}
    fields["import_file_name"] = ["../../settings.py"]
    response = root_client.post(admin_url("customers", Customer, "process_import"), fields)
    assert response.status_code in (200, 302)
    assert counts(Customer)["customers"] == 0


def test_data_changed_between_preview_and_confirm_writes_nothing(root_client):
    preview = upload(root_client, "customers", Customer, HEADER + "Ann,ann@example.com,DE,active,gold\n")
    Customer(name="Early", email="ann@example.com", country="DE").save(using="customers")
    response = confirm(root_client, "customers", Customer, preview)
    assert response.status_code == 409
    assert "already exists in this database" in page_text(response)
    assert list(Customer.objects.using("customers").values_list("name", flat=True)) == ["Early"]
    assert TransferRecord.objects.get().outcome == "rejected"


def test_utf8_bom_imports_fine(root_client):
    preview = upload(
        root_client, "customers", Customer, b"\xef\xbb\xbf" + (HEADER + "Ann,a@example.com,DE,lead,gold\n").encode()
    )
    assert "1 new" in page_text(preview)
    assert confirm(root_client, "customers", Customer, preview).status_code == 302


def test_formula_is_imported_as_text_and_script_is_shown_escaped(root_client):
    content = HEADER.replace("\n", ",notes\n") + 'Ann,a@example.com,DE,lead,gold,"=HYPERLINK(""http://x"")"\n'
    content += "<script>alert(1)</script>,b@example.com,DE,lead,gold,x\n"
    preview = upload(root_client, "customers", Customer, content)
    html = preview.content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    confirm(root_client, "customers", Customer, preview)
    assert Customer.objects.using("customers").get(email="a@example.com").notes == '=HYPERLINK("http://x")'


@pytest.mark.parametrize("fmt", ["xlsx", "json", "tsv"])
def test_other_formats_import(root_client, fmt):
    rows = [["name", "email", "country", "status", "tier"], ["Ann", "a@example.com", "DE", "lead", "gold"]]
    if fmt == "xlsx":
        book = openpyxl.Workbook()
        for row in rows:
            book.active.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        content = buffer.getvalue()
    elif fmt == "json":
        content = json.dumps([dict(zip(rows[0], rows[1], strict=True))])
    else:
        content = "\n".join("\t".join(r) for r in rows) + "\n"
    preview = upload(root_client, "customers", Customer, content, name=f"c.{fmt}")
    assert "1 new" in page_text(preview), page_text(preview)[-600:]
    assert confirm(root_client, "customers", Customer, preview).status_code == 302
    assert Customer.objects.using("customers").get().email == "a@example.com"


# -- bad files -----------------------------------------------------------------------


def xlsx_bytes(rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def zip_bomb():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (50 * 1024 * 1024))
    return buffer.getvalue()


BAD_FILES = {
    "latin-1 declared as utf-8": (
        ("name,email,country,status,tier\nJosé,j@example.com,DE,lead,gold\n").encode("latin-1"),
        "csv",
        ["not valid UTF-8", "line 2"],
    ),
    "utf-16": (HEADER.encode("utf-16"), "csv", ["UTF-16"]),
    "semicolons": (b"name;email;country;status;tier\nAnn;a@example.com;DE;lead;gold\n", "csv", ["separated by", ";"]),
    "empty file": (b"", "csv", ["empty"]),
    "headers only": (HEADER.encode(), "csv", ["no data rows"]),
    "unknown header": (
        (HEADER.replace("tier", "tier,colour") + "Ann,a@example.com,DE,lead,gold,red\n").encode(),
        "csv",
        ["unknown columns: colour"],
    ),
    "missing required header": (b"name,status\nAnn,lead\n", "csv", ["missing required columns: email, country"]),
    "duplicate header": (
        b"name,email,email,country\nAnn,a@example.com,b@example.com,DE\n",
        "csv",
        ["duplicate columns: email"],
    ),
    "too many cells": (
        (HEADER + "Ann,a@example.com,DE,lead,gold,extra\n").encode(),
        "csv",
        ["Line 2 has 6 cells", "too many"],
    ),
    "too few cells": ((HEADER + "Ann,a@example.com,DE\n").encode(), "csv", ["Line 2 has 3 cells", "too few"]),
    "value too long": (
        (HEADER + "A" * 201 + ",a@example.com,DE,lead,gold\n").encode(),
        "csv",
        ["2 name AAAA", "at most 200 characters"],
    ),
    "bad choice": (
        (HEADER + "Ann,a@example.com,DE,sleeping,gold\n").encode(),
        "csv",
        ["2 status sleeping", "not a valid choice"],
    ),
    "nul byte": ((HEADER + "Ann\x00,a@example.com,DE,lead,gold\n").encode(), "csv", ["NUL byte", "line 2"]),
    "duplicate in file": (
        (HEADER + "Ann,a@example.com,DE,lead,gold\nAnna,A@example.com,DE,lead,gold\n").encode(),
        "csv",
        ["3 email A@example.com", "also in row 2 of this file"],
    ),
    "truncated xlsx": (xlsx_bytes([["name"], ["Ann"]])[:300], "xlsx", ["not a complete XLSX"]),
    "zip bomb xlsx": (zip_bomb(), "xlsx", ["zip bomb"]),
    "json not a list": (b'{"name": "Ann"}', "json", ["list of objects"]),
    "json list of lists": (b'[["Ann"]]', "json", ["list of objects"]),
    "json lone surrogate value": (
        b'[{"name": "Ann", "email": "a@example.com"}, {"name": "B\\ud800b", "email": "b@example.com"}]',
        "json",
        ["Object 2 holds an escape that is no character", "no column can store it"],
    ),
    "json lone surrogate key": (b'[{"name\\udfff": "Ann"}]', "json", ["Object 1 holds an escape"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_explained_and_write_nothing(root_client, case):
    content, fmt, expected = BAD_FILES[case]
    with capture_queries() as log:
        response = upload(root_client, "customers", Customer, content, name=f"bad.{fmt}")
    assert response.status_code == 200
    text = page_text(response)
    for fragment in expected:
        assert fragment in text, f"{case}: {fragment!r} not in {text[-800:]!r}"
    assert "Confirm import" not in text
    assert not any(log.writes_on(alias) for alias in ALL_DATABASES)
    assert counts(Customer) == {"customers": 0, "archive": 0}


def test_duplicate_against_the_database_is_a_row_error(root_client):
    seed_customers("customers")
    response = upload(
        root_client,
        "customers",
        Customer,
        HEADER + "New,new@example.com,DE,lead,gold\nX,ANN@example.com,DE,lead,gold\n",
    )
    text = page_text(response)
    assert "3 email ANN@example.com Customer with this email (ann@example.com) already exists" in text
    assert Customer.objects.using("customers").count() == 3


def test_file_over_the_size_limit_is_refused(root_client, settings):
    settings.CONSOLE_IMPORT_MAX_BYTES = 100
    response = upload(root_client, "customers", Customer, HEADER + "Ann,a@example.com,DE,lead,gold\n" * 10)
    assert response.status_code == 200
    assert "the limit is" in page_text(response) and "Confirm import" not in page_text(response)
    assert not any(upload_dir().iterdir())


def test_numbers_dates_and_huge_integers_are_field_errors(root_client):
    content = (
        "name,credit_limit,opened,class_field,city,country\n"
        "Acme,abc,2024-01-01,C,Berlin,DE\n"
        f"Beta,{'9' * 400},2024-01-01,C,Berlin,DE\n"
        "Gamma,10.00,2024-02-31,C,Berlin,DE\n"
    )
    response = upload(root_client, "legacy", Custmast, content)
    text = page_text(response)
    assert "2 credit_limit abc" in text
    assert "3 credit_limit 999" in text
    assert "4 opened 2024-02-31" in text
    assert Custmast.objects.using("legacy").count() == 0


def test_foreign_key_must_exist_in_the_panel_database(root_client):
    home = seed_customers("customers")
    seed_customers("archive", suffix="-a")
    foreign_pk = home["bob"].pk + 1000
    Customer(pk=foreign_pk, name="Only in customers", email="only@example.com", country="DE").save(using="customers")
    content = f"customer,number,status,placed_on\n{foreign_pk},Z-1,open,2026-01-01\n"
    response = upload(root_client, "archive", Order, content)
    text = page_text(response)
    assert f"2 customer {foreign_pk} No customer with pk = &#x27;{foreign_pk}&#x27; in this database." in text
    assert "1 problem to fix" in text
    assert not Order.objects.using("archive").filter(number="Z-1").exists()


# -- permissions ---------------------------------------------------------------------


def staff(*codenames):
    user = User.objects.db_manager("users").create_user("clerk", password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.using("users").get(codename=codename))
    return user


def export_urls(panel, customer):
    return [
        ("get", admin_url(panel, Customer, "export"), None),
        ("post", admin_url(panel, Customer, "export"), {"format": "0"}),
        (
            "post",
            admin_url(panel, Customer, "changelist"),
            {"action": "export_admin_action", "_selected_action": [customer.pk]},
        ),
        ("post", admin_url(panel, Customer, "change", customer.pk), {"_export-item": "1"}),
    ]


def test_staff_without_view_permission_gets_403_on_every_export_url(client):
    customer = seed_customers("customers")["ann"]
    client.force_login(staff("access_customers", "view_tag"))
    for method, url, data in export_urls("customers", customer):
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, (url, data)


def test_view_permission_may_export_but_not_import(client):
    seed_customers("customers")
    client.force_login(staff("access_customers", "view_customer"))
    assert client.get(admin_url("customers", Customer, "export")).status_code == 200
    assert client.get(admin_url("customers", Customer, "import")).status_code == 403
    assert client.post(admin_url("customers", Customer, "process_import"), {}).status_code == 403
    assert upload(client, "customers", Customer, HEADER + "Ann,a@example.com,DE,lead,gold\n").status_code == 403


def test_import_needs_add_and_change(client):
    client.force_login(staff("access_customers", "add_customer"))
    assert client.get(admin_url("customers", Customer, "import")).status_code == 403
    client.force_login(User.objects.db_manager("users").get(username="clerk"))
    user = User.objects.db_manager("users").get(username="clerk")
    user.user_permissions.add(Permission.objects.using("users").get(codename="change_customer"))
    client.force_login(User.objects.db_manager("users").get(pk=user.pk))
    assert client.get(admin_url("customers", Customer, "import")).status_code == 200


def test_import_and_export_urls_need_the_panel_permission(client):
    customer = seed_customers("customers")["ann"]
    client.force_login(staff("add_customer", "change_customer", "view_customer"))
    for url in (admin_url("customers", Customer, "import"), admin_url("customers", Customer, "export")):
        response = client.get(url)
        assert response.status_code == 302 and "/customers/login/" in response["Location"]
    for method, url, data in export_urls("customers", customer):
        assert getattr(client, method)(url, data).status_code == 302


# -- failure in the middle ---------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_connection_dropping_mid_import_rolls_back_everything_and_a_retry_succeeds(monkeypatch):
    from django.db import connections

    from admin_site.transfers.imports import read_dataset, run_import
    from admin_site.transfers.resources import DatabaseModelResource, resource_for

    rows = "".join(f"C{i},c{i}@example.com,DE,lead,gold\n" for i in range(2500))
    dataset = read_dataset((HEADER + rows).encode(), "csv")
    original = DatabaseModelResource.bulk_create
    calls = []

    def drop_after_first_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            connection = connections[self.using]
            if connection.vendor == "mysql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT CONNECTION_ID()")
                    (thread_id,) = cursor.fetchone()
                killer = connections.create_connection(self.using)
                with killer.cursor() as cursor:
                    cursor.execute(f"KILL CONNECTION {int(thread_id)}")
                killer.close()
            else:
                raise OperationalError("database connection lost")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DatabaseModelResource, "bulk_create", drop_after_first_batch)
    resource = resource_for(Customer)(using="customers")
    try:
        result = run_import(resource, dataset, dry_run=False, via="command")
    except DatabaseDriverError:
        pass  # the driver's error propagated: the import did not pretend to succeed
    else:
        assert result.problems, "a dropped connection must surface as a problem, not a success"
    connections["customers"].close()
    assert Customer.objects.using("customers").count() == 0
    assert TransferRecord.objects.using("users").get().outcome in ("failed", "rejected")

    monkeypatch.setattr(DatabaseModelResource, "bulk_create", original)
    result = run_import(resource_for(Customer)(using="customers"), dataset, dry_run=False, via="command")
    assert not result.problems
    assert Customer.objects.using("customers").count() == 2500


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "tsv"])
def test_export_then_import_round_trips_without_changes(root_client, fmt):
    seed_customers("archive")
    before = list(Customer.objects.using("archive").order_by("pk").values())
    response = export_file(root_client, "archive", Customer, FORMAT[fmt])
    assert response.status_code == 200 and response.streaming
    exported = b"".join(response.streaming_content)
    preview = upload(root_client, "archive", Customer, exported, name=f"export.{fmt}")
    text = page_text(preview)
    assert "0 new" in text and "0 updated" in text and "3 unchanged" in text, text[-600:]
    assert confirm(root_client, "archive", Customer, preview).status_code == 302
    after = list(Customer.objects.using("archive").order_by("pk").values())
    assert after == before  # unchanged rows are not saved: not even their change time moves
    assert Customer.objects.using("customers").count() == 0


def test_audit_trail_is_read_only_on_the_console_panel(root_client):
    preview = upload(root_client, "customers", Customer, HEADER + "Ann,a@example.com,DE,lead,gold\n")
    confirm(root_client, "customers", Customer, preview)
    record = TransferRecord.objects.get()
    changelist = root_client.get(admin_url("users", TransferRecord, "changelist"))
    assert changelist.status_code == 200 and "customers.Customer" in changelist.content.decode()
    assert root_client.get(admin_url("users", TransferRecord, "change", record.pk)).status_code == 200
    assert root_client.get(admin_url("users", TransferRecord, "add")).status_code == 403
    assert root_client.post(admin_url("users", TransferRecord, "delete", record.pk), {"post": "yes"}).status_code == 403
    assert root_client.get(admin_url("users", TransferRecord, "import")).status_code == 403
    assert TransferRecord.objects.count() == 1


def test_database_failing_during_confirm_is_a_message_not_a_500(root_client, monkeypatch):
    from admin_site.transfers.resources import DatabaseModelResource

    preview = upload(root_client, "customers", Customer, HEADER + "Ann,a@example.com,DE,lead,gold\n")

    def lost(self, *args, **kwargs):
        raise OperationalError("(2013, 'Lost connection to server during query')")

    monkeypatch.setattr(DatabaseModelResource, "bulk_create", lost)
    response = confirm(root_client, "customers", Customer, preview)
    assert response.status_code == 302
    messages = [str(m) for m in root_client.get(response["Location"]).context["messages"]]
    assert any("nothing was imported" in m for m in messages)
    assert Customer.objects.using("customers").count() == 0
    assert TransferRecord.objects.get().outcome == "failed"


def test_a_key_cell_that_is_not_a_number_names_its_row_and_column(root_client):
    before = Customer.objects.using("customers").count()
    preview = upload(root_client, "customers", Customer, "id,name,email\nabc,Ann,ann@example.com\n")

    text = page_text(preview)
    assert "ConversionSyntax" not in text
    problems = text.split("Problems", 1)[-1]
    assert "2 id abc Enter a whole number." in problems, problems[:600]
    assert Customer.objects.using("customers").count() == before


def test_the_same_key_twice_in_one_file_is_a_problem_not_a_double_update(root_client):
    customer = Customer.objects.db_manager("customers").create(name="Ann", email="ann@example.com")
    rows = [f"{customer.pk},Ann {n},ann@example.com,DE,active,standard" for n in ("One", "Two")]
    content = "id," + HEADER + "\n".join(rows) + "\n"

    preview = upload(root_client, "customers", Customer, content)

    text = page_text(preview)
    assert f"The key {customer.pk} is also in row 2 of this file: a row is imported once." in text
    customer.refresh_from_db(using="customers")
    assert customer.name == "Ann"
