"""History that says what changed: each field before → after, on every path a panel writes through.

Entries are Django's LogEntry rows on the users database, tagged with the panel
and the diff (``PanelLogEntry``); the object's history page and the panel's
Changes list show them, cut to what the viewer may see, and never a secret.
"""

import datetime
import re

import pytest
from django.contrib.admin import helpers
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from admin_site import history
from admin_site.models import PanelLogEntry, TransferRecord
from admin_site.transfers.formats import IMPORT_FORMATS
from console.customers.admin import CustomerAdmin
from console.customers.models import Address, Customer, Tag
from console.legacy.models import Custmast
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import admin_url, capture_queries, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

CSV = str([cls.__name__.lower() for cls in IMPORT_FORMATS].index("csv"))


def text(response):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def save_change_form(client, panel, obj, **changes):
    """Post ``obj``'s change form as a browser would, with ``changes`` applied (None removes a field)."""
    url = admin_url(panel, type(obj), "change", obj.pk)
    data = form_data(client.get(url).content, f"{type(obj)._meta.model_name}_form")
    data = {key: value for key, value in data.items() if "__prefix__" not in key}
    for key, value in changes.items():
        key = key.replace("__", "-")
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    data["_save"] = "Save"
    response = client.post(url, data)
    assert response.status_code == 302, text(response)[:2000]
    return response


def entries(panel=None, **filters):
    queryset = LogEntry.objects.using("users").select_related("panel").order_by("id")
    if panel:
        queryset = queryset.filter(panel__database=panel)
    return list(queryset.filter(**filters))


def items(entry):
    return {item["field"]: (item.get("before"), item.get("after")) for item in entry.panel.changes if "field" in item}


def history_page(client, panel, obj):
    response = client.get(admin_url(panel, type(obj), "history", obj.pk))
    assert response.status_code == 200
    return text(response)


def changes_page(client, panel, **query):
    return client.get(reverse(f"{panel}:changes"), query)


# -- the change form and its inlines -------------------------------------------------


def test_a_change_form_save_shows_each_field_before_and_after_on_the_history_page(root_client):
    data = seed_customers("customers")
    ann = data["ann"]
    ann.name = "Ada"
    ann.save(using="customers")
    save_change_form(root_client, "customers", ann, name="Ada L.", tier="gold", tags=[str(t.pk) for t in data["tags"]])

    [entry] = entries("customers", action_flag=CHANGE, object_id=str(ann.pk))
    assert entry.panel.via == "form"
    assert items(entry)["name"] == ("Ada", "Ada L.")
    assert items(entry)["tier"] == ("Standard", "Gold")  # choice labels, not stored codes
    assert items(entry)["tags"] == (["vip"], ["loyal", "vip"])
    page = history_page(root_client, "customers", ann)
    assert "Name: Ada → Ada L." in page
    assert "Tier: Standard → Gold" in page
    assert "Every change on this panel" in page


def test_an_added_object_records_its_values(root_client):
    response = root_client.post(admin_url("customers", Tag, "add"), {"name": "newcomer", "_save": "Save"})
    assert response.status_code == 302
    [entry] = entries("customers", action_flag=ADDITION)
    assert items(entry)["name"] == ("", "newcomer")


def test_inline_rows_added_changed_and_deleted_are_recorded_on_the_parent(root_client):
    data = seed_customers("customers")
    ann = data["ann"]
    Address(customer=ann, line1="Old Road 2", city="Bonn", postcode="53111", country="DE").save(using="customers")
    first, second = Address.objects.using("customers").filter(customer=ann).order_by("id")
    save_change_form(
        root_client,
        "customers",
        ann,
        addresses__0__city="Potsdam",
        addresses__1__DELETE="on",
        addresses__TOTAL_FORMS="3",
        addresses__2__customer=str(ann.pk),
        addresses__2__kind="shipping",
        addresses__2__line1="New Lane 3",
        addresses__2__city="Hamburg",
        addresses__2__postcode="20095",
        addresses__2__country="DE",
    )
    [entry] = entries("customers", action_flag=CHANGE, object_id=str(ann.pk))
    inline = {(item["action"], item["object"].split(",")[0]): item["changes"] for item in entry.panel.changes}
    changed = next(changes for (action, _), changes in inline.items() if action == "changed")
    assert {"field": "city", "label": "City", "before": "Berlin", "after": "Potsdam"} in changed
    added = next(changes for (action, _), changes in inline.items() if action == "added")
    assert {"field": "city", "label": "City", "before": "", "after": "Hamburg"} in added
    deleted = next(changes for (action, _), changes in inline.items() if action == "deleted")
    assert {"field": "city", "label": "City", "before": "Bonn", "after": ""} in deleted
    page = history_page(root_client, "customers", ann)
    assert "City: Berlin → Potsdam" in page and "deleted" in page and "added" in page
    assert not Address.objects.using("customers").filter(pk=second.pk).exists()


# -- the list, actions, deletes --------------------------------------------------------


def test_a_list_editable_save_records_the_row_change(root_client):
    tag = Tag.objects.using("customers").create(name="vip")
    url = admin_url("customers", Tag, "changelist")
    listed = form_data(root_client.get(url).content, "changelist-form")  # the row's state token included
    listed.pop("action", None)
    response = root_client.post(url, {**listed, "form-0-name": "very important", "_save": "Save"})
    assert response.status_code == 302
    [entry] = entries("customers", action_flag=CHANGE, object_id=str(tag.pk))
    assert entry.panel.via == "list"
    assert items(entry)["name"] == ("vip", "very important")


def run_action(client, panel, model, action, pks):
    response = client.post(
        admin_url(panel, model, "changelist"),
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "index": "0"},
    )
    assert response.status_code == 302
    return response


def test_a_writing_action_records_each_row_before_and_after_and_a_summary(root_client):
    data = seed_customers("customers")
    run_action(root_client, "customers", Customer, "record_contact", [data["ann"].pk, data["bob"].pk])

    rows = entries("customers", action_flag=CHANGE, panel__via="action", object_id__isnull=False)
    assert {entry.object_id for entry in rows} == {str(data["ann"].pk), str(data["bob"].pk)}
    for entry in rows:
        assert items(entry)["contact_count"] == ("0", "1")
        assert items(entry)["last_contacted_at"][0] == ""
    [summary] = entries("customers", panel__via="action", object_id__isnull=True)
    assert "2 selected customers; 2 changed" in summary.change_message
    assert "cap reached" not in summary.change_message
    assert "Contact count: 0 → 1" in history_page(root_client, "customers", data["ann"])


def test_an_action_over_the_cap_records_the_first_rows_and_says_the_cap_was_reached(root_client, monkeypatch):
    monkeypatch.setattr(history, "ACTION_ROWS", 1)
    data = seed_customers("customers")
    run_action(root_client, "customers", Customer, "record_contact", [data["ann"].pk, data["bob"].pk])
    rows = entries("customers", panel__via="action", object_id__isnull=False)
    assert [entry.object_id for entry in rows] == [str(min(data["ann"].pk, data["bob"].pk))]
    [summary] = entries("customers", panel__via="action", object_id__isnull=True)
    assert "2 selected customers" in summary.change_message and "cap reached" in summary.change_message


def test_a_delete_records_the_deleted_objects_values(root_client):
    data = seed_customers("customers")
    bob = data["bob"]
    response = root_client.post(admin_url("customers", Customer, "delete", bob.pk), {"post": "yes"})
    assert response.status_code == 302
    [entry] = entries("customers", action_flag=DELETION, object_id=str(bob.pk))
    assert entry.panel.via == "delete"
    assert items(entry)["name"] == ("Bob Baker", "")
    assert items(entry)["tier"] == ("VIP", "")


def test_a_bulk_delete_records_each_rows_values(root_client):
    vip, loyal = Tag.objects.using("customers").bulk_create([Tag(name="vip"), Tag(name="loyal")])
    response = root_client.post(
        admin_url("customers", Tag, "changelist"),
        {"action": "delete_selected", "post": "yes", helpers.ACTION_CHECKBOX_NAME: [vip.pk, loyal.pk]},
    )
    assert response.status_code == 302
    deleted = {entry.object_repr: items(entry)["name"] for entry in entries("customers", action_flag=DELETION)}
    assert deleted == {"vip": ("vip", ""), "loyal": ("loyal", "")}


# -- imports ----------------------------------------------------------------------------


def import_file(client, panel, model, content, name="customers.csv"):
    preview = client.post(
        admin_url(panel, model, "import"),
        {"format": CSV, "import_file": SimpleUploadedFile(name, content.encode())},
    )
    fields = form_data(preview.content)
    data = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert "import_file_name" in data, text(preview)[:2000]
    response = client.post(admin_url(panel, model, "process_import"), data)
    assert response.status_code == 302, text(response)[:2000]


def test_an_import_writes_a_summary_and_each_rows_changes(root_client):
    data = seed_customers("customers")
    ann = data["ann"]
    content = (
        "id,name,email,country,status,tier\n"
        f"{ann.pk},Ann Archer-Smith,{ann.email},DE,active,gold\n"
        ",Dan Dunn,dan@example.com,NL,lead,standard\n"
    )
    import_file(root_client, "customers", Customer, content)

    record = TransferRecord.objects.using("users").get(kind="import", outcome="success")
    [summary] = entries("customers", panel__via="import", object_id__isnull=True)
    assert summary.panel.transfer_id == record.pk
    assert "customers.csv: 1 new, 1 updated" in summary.change_message
    assert "cap reached" not in summary.change_message
    [updated] = entries("customers", panel__via="import", action_flag=CHANGE, object_id=str(ann.pk))
    assert items(updated)["name"] == ("Ann Archer", "Ann Archer-Smith")
    assert items(updated)["tier"] == ("Standard", "Gold")
    assert "email" not in items(updated)  # unchanged fields are not listed
    [added] = entries("customers", panel__via="import", action_flag=ADDITION)
    assert added.object_repr.startswith("Dan Dunn") and items(added)["name"] == ("", "Dan Dunn")
    assert "Name: Ann Archer → Ann Archer-Smith" in history_page(root_client, "customers", ann)
    page = text(changes_page(root_client, "customers"))
    assert f"transfer record #{record.pk}" in page


def test_an_import_over_the_cap_records_the_first_rows_and_says_so(root_client, settings):
    settings.CONSOLE_HISTORY_IMPORT_ROWS = 2
    rows = "".join(f"Person {i},p{i}@example.com,DE,lead,standard\n" for i in range(5))
    import_file(root_client, "customers", Customer, "name,email,country,status,tier\n" + rows)
    assert len(entries("customers", panel__via="import", action_flag=ADDITION)) == 2
    [summary] = entries("customers", panel__via="import", object_id__isnull=True)
    assert "5 new" in summary.change_message and "first 2 rows only (cap reached)" in summary.change_message


def test_a_preview_records_nothing(root_client):
    root_client.post(
        admin_url("customers", Customer, "import"),
        {"format": CSV, "import_file": SimpleUploadedFile("c.csv", b"name,email\nX,x@example.com\n")},
    )
    assert not LogEntry.objects.using("users").exists()


# -- the Changes list -------------------------------------------------------------------


def test_the_changes_list_filters_by_user_model_and_date(root_client, superuser):
    data = seed_customers("customers")
    other = User.objects.db_manager("users").create_superuser("other", "other@example.com", "pw")
    save_change_form(root_client, "customers", data["bob"], name="Bobby")
    tag = data["tags"][0]
    root_client.force_login(other)
    save_change_form(root_client, "customers", tag, name="vip-2")
    old = entries("customers", object_id=str(tag.pk))[0]
    LogEntry.objects.using("users").filter(pk=old.pk).update(action_time=timezone.now() - datetime.timedelta(days=40))

    everything = text(changes_page(root_client, "customers"))
    assert "Bobby" in everything and "vip-2" in everything
    assert "Name: Bob Baker → Bobby" in everything
    by_user = text(changes_page(root_client, "customers", user="root"))
    assert "Bobby" in by_user and "vip-2" not in by_user
    by_model = text(changes_page(root_client, "customers", model="customers.tag"))
    assert "vip-2" in by_model and "Bobby" not in by_model
    recent = (timezone.localdate() - datetime.timedelta(days=7)).isoformat()
    by_date = text(changes_page(root_client, "customers", since=recent))
    assert "Bobby" in by_date and "vip-2" not in by_date
    old_day = timezone.localtime(timezone.now() - datetime.timedelta(days=40)).date().isoformat()
    on_day = text(changes_page(root_client, "customers", since=old_day, until=old_day))
    assert "vip-2" in on_day and "Bobby" not in on_day


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2026-13-45"},
        {"until": "0001-01-01"},
        {"since": "9999-12-31"},
        {"model": "auth.user"},
        {"model": "x" * 5000},
        {"user": "u" * 500},
        {"since": "2026-02-01", "until": "2026-01-01"},
    ],
)
def test_bad_filters_are_a_form_error_not_a_500(root_client, query):
    response = changes_page(root_client, "customers", **query)
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()


def test_a_huge_page_number_shows_the_last_page(root_client):
    Tag.objects.using("customers").create(name="a")
    save_change_form(root_client, "customers", Tag.objects.using("customers").get(), name="b")
    for page in ("99999999999999999999", "-1", "x"):
        response = changes_page(root_client, "customers", p=page)
        assert response.status_code == 200 and "Name: a → b" in text(response)


def test_another_panels_changes_never_appear(root_client):
    seed_customers("customers")
    archived = seed_customers("archive")
    save_change_form(root_client, "archive", archived["bob"], name="Archived Bob")
    assert "Archived Bob" in text(changes_page(root_client, "archive"))
    assert "Archived Bob" not in text(changes_page(root_client, "customers"))
    assert "Archived Bob" not in history_page(
        root_client, "customers", Customer.objects.using("customers").get(name="Bob Baker")
    )


def test_the_changes_list_needs_the_panel_and_shows_only_models_the_user_may_view(client):
    data = seed_customers("customers")
    staff = User.objects.db_manager("users").create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert changes_page(client, "customers").status_code == 302  # may not enter: the login page
    root = User.objects.db_manager("users").create_superuser("boss", "b@example.com", "pw")
    client.force_login(root)
    save_change_form(client, "customers", data["bob"], name="Bobby")
    save_change_form(client, "customers", data["tags"][0], name="vip-2")
    perms = Permission.objects.using("users").filter(
        codename__in=["access_customers", "view_tag"], content_type__app_label__in=["admin_site", "customers"]
    )
    staff.user_permissions.set(perms)
    client.force_login(User.objects.db_manager("users").get(pk=staff.pk))
    page = text(changes_page(client, "customers"))
    assert "vip-2" in page and "Bobby" not in page


# -- where it is stored, and what is never shown -------------------------------------


def test_a_legacy_edit_is_recorded_on_the_users_database_and_adds_nothing_to_legacy(root_client):
    legacy = Custmast.objects.using("legacy").create(
        name="Old Corp", email="old@example.com", city="Leeds", country="GB", opened=datetime.date(2001, 5, 1)
    )
    tables = set(connections["legacy"].introspection.table_names())
    with capture_queries() as queries:
        save_change_form(root_client, "legacy", legacy, name="Old Corp Ltd")
    writes = queries.writes_on("legacy")
    assert writes and all("CUSTMAST" in sql.upper() and sql.upper().lstrip().startswith("UPDATE") for sql in writes)
    assert set(connections["legacy"].introspection.table_names()) == tables
    [entry] = entries("legacy", object_id=str(legacy.pk))
    assert items(entry)["name"] == ("Old Corp", "Old Corp Ltd")
    assert PanelLogEntry.objects.using("users").filter(database="legacy").count() == 1


def test_no_password_hash_in_history_or_the_changes_list_after_a_password_is_set(root_client):
    dora = User.objects.db_manager("users").create_user("dora", "dora@example.com", "old-pw", is_staff=True)
    old_hash = dora.password
    url = reverse("users:auth_user_password_change", args=[dora.pk])
    response = root_client.post(url, {"password1": "N3w-secret-pw!", "password2": "N3w-secret-pw!"})
    assert response.status_code == 302
    save_change_form(root_client, "users", User.objects.using("users").get(pk=dora.pk), first_name="Dora")
    dora.refresh_from_db()
    pages = [history_page(root_client, "users", dora), text(changes_page(root_client, "users"))]
    stored = str([entry.panel.changes for entry in entries("users")])
    for page in [*pages, stored]:
        for secret in (dora.password, old_hash, "N3w-secret-pw!", dora.password.split("$")[-1]):
            assert secret not in page
    assert "Password: changed" in pages[0] and "Password: changed" in pages[1]
    assert "First name: (empty) → Dora" in pages[0]


def test_a_field_the_viewer_may_not_view_is_not_shown(client, monkeypatch):
    data = seed_customers("customers")
    root = User.objects.db_manager("users").create_superuser("boss", "b@example.com", "pw")
    client.force_login(root)
    save_change_form(client, "customers", data["bob"], name="Bobby", notes="owes us money")

    original = CustomerAdmin.get_fieldsets

    def without_notes(self, request, obj=None):
        fieldsets = original(self, request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f != "notes"]}) for name, opts in fieldsets]

    monkeypatch.setattr(CustomerAdmin, "get_fieldsets", without_notes)
    staff = User.objects.db_manager("users").create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.using("users").filter(codename__in=["access_customers", "view_customer"])
    )
    assert "owes us money" in history_page(client, "customers", data["bob"])
    client.force_login(staff)
    for page in (history_page(client, "customers", data["bob"]), text(changes_page(client, "customers"))):
        assert "Name: Bob Baker → Bobby" in page
        assert "owes us money" not in page and "Notes:" not in page


def test_a_deleted_users_history_keeps_no_password_hash(root_client):
    dora = User.objects.db_manager("users").create_user("dora", "dora@example.com", "old-pw", is_staff=True)
    response = root_client.post(
        admin_url("users", User, "changelist"),
        {"action": "delete_selected", "post": "yes", helpers.ACTION_CHECKBOX_NAME: [dora.pk]},
    )
    assert response.status_code == 302
    [entry] = entries("users", action_flag=DELETION)
    assert items(entry)["username"] == ("dora", "")
    assert "password" not in items(entry)
    assert dora.password not in str(entry.panel.changes)
    assert dora.password not in changes_page(root_client, "users").content.decode()


def test_the_panel_index_and_history_pages_link_to_the_changes_list(root_client):
    tag = Tag.objects.using("customers").create(name="a")
    changes = reverse("customers:changes")
    assert f'href="{changes}"' in root_client.get(reverse("customers:index")).content.decode()
    history_html = root_client.get(admin_url("customers", Tag, "history", tag.pk)).content.decode()
    assert f'href="{changes}?model=customers.tag"' in history_html


def test_an_inline_field_the_viewer_may_not_view_is_not_shown(client, monkeypatch):
    from console.customers.admin import AddressInline

    data = seed_customers("customers")
    root = User.objects.db_manager("users").create_superuser("boss", "b@example.com", "pw")
    client.force_login(root)
    save_change_form(client, "customers", data["ann"], addresses__0__city="Potsdam", addresses__0__postcode="14467")

    original = AddressInline.get_fieldsets

    def without_postcode(self, request, obj=None):
        fieldsets = original(self, request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f != "postcode"]}) for name, opts in fieldsets]

    monkeypatch.setattr(AddressInline, "get_fieldsets", without_postcode)
    staff = User.objects.db_manager("users").create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.using("users").filter(codename__in=["access_customers", "view_customer", "view_address"])
    )
    assert "14467" in history_page(client, "customers", data["ann"])
    client.force_login(staff)
    for page in (history_page(client, "customers", data["ann"]), text(changes_page(client, "customers"))):
        assert "City: Berlin → Potsdam" in page
        # The row's name (Django's own change message names it too) is not the postcode's diff.
        assert "Postcode:" not in page and "→ 14467" not in page
    staff.user_permissions.set(
        Permission.objects.using("users").filter(codename__in=["access_customers", "view_customer"])
    )
    client.force_login(User.objects.db_manager("users").get(pk=staff.pk))
    # Without the address permission the form has no address inline, and the history no address diff.
    assert "City: Berlin → Potsdam" not in history_page(client, "customers", data["ann"])


def test_a_deleted_second_factor_device_leaves_no_key_or_backup_code_in_history(root_client):
    """A device's key and backup codes are secrets (``admin_site.secrets``): deleting one records neither."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    dora = User.objects.db_manager("users").create_user("dora", "dora@example.com", "pw", is_staff=True)
    device = TOTPDevice.objects.using("users").create(user=dora, name="Phone", confirmed=True)
    backup = StaticDevice.objects.using("users").create(user=dora, name="Backup codes", confirmed=True)
    token = StaticToken.objects.using("users").create(device=backup, token="k3y6c0d3")
    for model, obj in ((TOTPDevice, device), (StaticDevice, backup)):
        response = root_client.post(admin_url("users", model, "delete", obj.pk), {"post": "yes"})
        assert response.status_code == 302
    assert not TOTPDevice.objects.using("users").exists()
    pages = text(changes_page(root_client, "users")) + str([entry.panel.changes for entry in entries("users")])
    assert "Phone" in pages  # the deletion is recorded
    assert device.key not in pages and token.token not in pages
