"""Secrets never leave, and privilege is not for import: password hashes in no export or preview, on any panel.

The rule is declared once (``DatabaseModelResource.secret_fields`` and a
model's ``console_secret_fields``); every resource the console builds inherits it.
"""

import io
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from admin_site.transfers.resources import DatabaseModelResource, resource_for
from console.customers.models import Customer
from tests.conftest import ALL_DATABASES, seed_users
from tests.test_imports import FORMAT, confirm, page_text
from tests.utils import admin_url, export_file, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def staff(username, *codenames, superuser=False):
    user = User.objects.db_manager("users").create_user(username, password="pw", is_staff=True)
    user.is_superuser = superuser
    user.save(using="users")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.using("users").get(codename=codename))
    return User.objects.db_manager("users").get(pk=user.pk)


def upload_users(client, content, name="users.csv"):
    return client.post(
        admin_url("users", User, "import"),
        {"format": FORMAT[name.rsplit(".", 1)[-1]], "import_file": SimpleUploadedFile(name, content.encode())},
    )


def test_a_view_only_user_exports_users_without_any_password_hash(client):
    seed_users()
    client.force_login(staff("viewer", "access_users", "view_user"))
    page = client.get(admin_url("users", User, "export"))
    assert page.status_code == 200
    assert "password" not in form_data(page.content), "the export form offers no password field"
    for extra in ({}, {"password": "on"}, {"fields": "password"}):
        response = export_file(client, "users", User, FORMAT["csv"], **extra)
        assert response.status_code == 200
        body = b"".join(response.streaming_content).decode()
        header = body.splitlines()[0].split(",")
        assert "username" in header and "password" not in header, header
        assert "md5$" not in body and "pbkdf2" not in body and "dora" in body


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx", "tsv"])
def test_no_format_carries_a_password_hash(root_client, fmt):
    seed_users()
    response = export_file(root_client, "users", User, FORMAT[fmt])
    body = b"".join(response.streaming_content)
    if fmt == "xlsx":
        import openpyxl

        sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
        body = repr(list(sheet.iter_rows(values_only=True))).encode()
    assert b"md5$" not in body and b"password" not in body and b"dora" in body


def test_no_resource_of_any_registered_model_has_a_secret_field():
    """Every model the console can import or export: the rule is inherited, not a one-off for auth.User."""
    for model in apps.get_models():
        resource = resource_for(model)(using="users")
        names = {name.lower() for name in resource.fields} | {
            (f.column_name or "").lower() for f in resource.fields.values()
        }
        assert not names & {"password"}, model
        assert "password" not in resource.get_export_order()


def test_a_model_marks_its_own_secrets_and_a_resource_cannot_reach_one_through_a_relation():
    class Resource(DatabaseModelResource):
        class Meta:
            model = Customer
            fields = ("name", "email", "notes")

    Customer.console_secret_fields = ("notes",)
    try:
        assert set(Resource(using="customers").fields) == {"name", "email"}
    finally:
        del Customer.console_secret_fields

    from console.profiles.models import Profile

    class ProfileResource(DatabaseModelResource):
        class Meta:
            model = Profile
            fields = ("display_name", "user__username", "user__password")

    fields = ProfileResource(using="users").fields
    assert "user__username" in fields and "user__password" not in fields


def test_the_command_line_exports_no_password(tmp_path):
    seed_users()
    out = tmp_path / "users.csv"
    call_command("export_records", "auth.User", "--database", "users", "-o", str(out))
    text = out.read_text()
    assert "dora" in text and "password" not in text.splitlines()[0] and "md5$" not in text


def test_a_password_column_is_refused_even_for_a_superuser(root_client):
    preview = upload_users(root_client, "username,password\neve,md5$abc$0123456789abcdef0123456789abcdef\n")
    text = page_text(preview)
    assert "unknown columns: password" in text and "Confirm import" not in text
    assert not User.objects.using("users").filter(username="eve").exists()


def test_a_non_superuser_cannot_grant_privilege_through_import(client):
    client.force_login(staff("clerk", "access_users", "add_user", "change_user"))
    content = "username,is_superuser,is_staff,groups,user_permissions\nmallory,1,1,,\n"
    preview = upload_users(client, content)
    text = page_text(preview)
    assert "Only a superuser can import groups, is_staff, is_superuser, user_permissions" in text
    assert "Confirm import" not in text
    assert not User.objects.using("users").filter(username="mallory").exists()
    # Without the privilege columns the same clerk may add users; they cannot log in until a password is set.
    preview = upload_users(client, "username,email,first_name\nmallory,m@example.com,Mal\n")
    assert "1 new" in page_text(preview), page_text(preview)[-500:]
    assert confirm(client, "users", User, preview).status_code == 302
    mallory = User.objects.using("users").get(username="mallory")
    assert not mallory.is_superuser and not mallory.is_staff
    assert not mallory.has_usable_password()


def test_a_superuser_may_import_privilege_columns(root_client):
    preview = upload_users(root_client, "username,is_staff\nopal,1\n")
    assert confirm(root_client, "users", User, preview).status_code == 302
    opal = User.objects.using("users").get(username="opal")
    assert opal.is_staff and not opal.has_usable_password()


def test_the_command_line_never_imports_a_password(tmp_path):
    path = Path(tmp_path / "users.csv")
    path.write_text("username,password\nzed,md5$abc$0123456789abcdef0123456789abcdef\n")
    errors = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_records", "auth.User", str(path), "--database", "users", stderr=errors)
    assert "unknown columns: password" in errors.getvalue()
    path.write_text("username,is_staff\nzed,1\n")
    call_command("import_records", "auth.User", str(path), "--database", "users")
    zed = User.objects.using("users").get(username="zed")
    assert zed.is_staff and not zed.has_usable_password()


def test_change_user_alone_grants_no_privilege_through_the_user_form(client):
    """The form route of the same rule as the import: only a superuser grants privilege or touches a superuser."""
    target = User.objects.db_manager("users").create_user("target", password="pw", is_staff=True)
    root = User.objects.db_manager("users").create_superuser("boss", "boss@example.com", "pw")
    client.force_login(staff("clerk", "access_users", "add_user", "change_user", "view_user"))
    url = admin_url("users", User, "change", target.pk)
    page = client.get(url)
    assert page.status_code == 200
    fields = form_data(page.content)
    assert "is_superuser" not in fields and "user_permissions" not in fields and "groups" not in fields
    data = {k: v for k, v in fields.items() if k != "csrfmiddlewaretoken"}
    data.update({"is_superuser": "on", "is_staff": "on", "first_name": "Changed"})
    assert client.post(url, data).status_code == 302
    target = User.objects.db_manager("users").get(pk=target.pk)
    assert target.first_name == "Changed" and not target.is_superuser
    # A superuser's account, its password included, is a superuser's to change.
    password_url = admin_url("users", User, "password_change", root.pk)
    form = {"usable_password": "true", "password1": "Xx-new-pass-9", "password2": "Xx-new-pass-9"}
    assert client.post(password_url, form).status_code == 403
    assert client.post(admin_url("users", User, "change", root.pk), {"username": "boss"}).status_code == 403
    assert User.objects.db_manager("users").get(pk=root.pk).check_password("pw")


def test_the_command_line_does_not_filter_on_a_secret(tmp_path):
    """A filter on the hash would give it away a prefix at a time."""
    seed_users()
    out = tmp_path / "users.csv"
    for lookup in ("password__startswith=md5", "password=x", "profile__user__password__contains=$"):
        with pytest.raises(CommandError, match="a secret field cannot be filtered on"):
            call_command("export_records", "auth.User", "--database", "users", "-o", str(out), "--filter", lookup)


def test_a_refused_privilege_column_in_an_update_file_is_one_clear_problem(client):
    """The package goes on to the rows after a header problem: no internal error may show up there."""
    clerk = staff("clerk", "access_users", "add_user", "change_user")
    client.force_login(clerk)
    text = page_text(upload_users(client, f"id,username,is_superuser\n{clerk.pk},clerk,1\n"))
    assert "Only a superuser can import is_superuser" in text
    assert "attribute" not in text and "Error" not in text.replace("errors", "")
    assert not User.objects.using("users").get(pk=clerk.pk).is_superuser
