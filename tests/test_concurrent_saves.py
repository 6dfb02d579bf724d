"""Two staff members on one record: a stale save is refused with the fields that changed, and nothing is lost.

Each test opens a form as a browser would (GET, every field it would post),
lets someone else save the record, then submits the stale form.
"""

import datetime
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from admin_site.concurrency import STATE_FIELD
from admin_site.models import TransferRecord
from console.customers.models import Address, Customer, Order, Tag, VipCustomer
from console.legacy.models import Custmast
from console.profiles.models import Team
from tests.conftest import ALL_DATABASES, seed_customers
from tests.test_imports import confirm, page_text, upload
from tests.utils import admin_url, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

CONFLICT = "Someone else changed this"


@pytest.fixture
def other_client():
    """A second staff member, in a browser of their own."""
    other = User.objects.db_manager("users").create_superuser("olga", "olga@example.com", "pw")
    browser = Client()
    browser.force_login(other)
    return browser


def open_form(client, url, form_id=None):
    """What the browser would post from the page at ``url``, as it stands now."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    data = form_data(response.content, form_id)
    assert any(name.endswith(STATE_FIELD) and value[0] for name, value in data.items()), "no state token"
    return data


def submit(client, url, data, **changes):
    return client.post(url, {**data, **changes, "_save": "Save"})


def errors_of(response):
    return re.sub(r"\s+", " ", response.content.decode())


def error_lists(response):
    """The error messages a page shows (for a failing assertion's message)."""
    return re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', errors_of(response))


def seed_legacy():
    row = Custmast(name="Old Mill Ltd", city="Leeds", country="GB", opened=datetime.date(1999, 5, 1))
    row.save(using="legacy")
    return row


def seed_user():
    user = User(username="dora", email="dora@example.com", is_staff=True, first_name="Dora")
    user.set_password("pw")
    user.save(using="users")
    return user


# (panel, model, make the row, field the first person changes, field the second person changes)
CASES = [
    ("customers", Customer, lambda: seed_customers("customers")["ann"], ("name", "Ann A."), ("notes", "Called")),
    ("archive", Customer, lambda: seed_customers("archive")["ann"], ("name", "Ann A."), ("notes", "Called")),
    (
        "customers",
        VipCustomer,
        lambda: seed_customers("customers")["bob"],
        ("name", "Bob B."),
        ("phone", "+44 20 7946 0000"),
    ),
    (
        "customers",
        Address,
        lambda: seed_customers("customers")["ann"].addresses.get(),
        ("city", "Bonn"),
        ("postcode", "53111"),
    ),
    ("customers", Tag, lambda: seed_customers("customers")["tags"][0], ("name", "gold"), ("name", "platinum")),
    (
        "users",
        Team,
        lambda: Team.objects.db_manager("users").create(name="Ops"),
        ("name", "Ops EU"),
        ("description", "24/7"),
    ),
    ("users", User, seed_user, ("first_name", "Dorothy"), ("email", "d@example.com")),
    ("legacy", Custmast, seed_legacy, ("name", "New Mill Ltd"), ("city", "York")),
]


@pytest.mark.parametrize("panel, model, make, first, second", CASES, ids=[f"{c[0]}-{c[1].__name__}" for c in CASES])
def test_a_stale_save_is_refused_and_neither_edit_is_lost(root_client, other_client, panel, model, make, first, second):
    row = make()
    url = admin_url(panel, model, "change", row.pk)
    theirs, mine = open_form(other_client, url), open_form(root_client, url)
    original = getattr(row, first[0])

    saved = submit(other_client, url, theirs, **{first[0]: first[1]})
    assert saved.status_code == 302, error_lists(saved)
    stale = submit(root_client, url, mine, **{second[0]: second[1]})

    assert stale.status_code == 200
    page = errors_of(stale)
    assert CONFLICT in page
    label = str(model._meta.get_field(first[0]).verbose_name).capitalize()
    yours = second[1] if second[0] == first[0] else original
    assert f"{label}: saved now “{first[1]}”, yours “{yours}”" in page
    stored = model._base_manager.using(panel).get(pk=row.pk)
    assert getattr(stored, first[0]) == first[1]  # the first edit is kept
    if second[0] != first[0]:
        assert getattr(stored, second[0]) == getattr(row, second[0])  # the stale one wrote nothing

    # Reloading shows what is stored now; the second edit then goes through and keeps the first.
    again = submit(root_client, url, open_form(root_client, url), **{second[0]: second[1]})
    assert again.status_code == 302, error_lists(again)
    stored = model._base_manager.using(panel).get(pk=row.pk)
    assert getattr(stored, second[0]) == second[1]
    if second[0] != first[0]:
        assert getattr(stored, first[0]) == first[1]


def test_a_save_without_a_concurrent_change_goes_through(root_client):
    ann = seed_customers("customers")["ann"]
    url = admin_url("customers", Customer, "change", ann.pk)
    response = submit(root_client, url, open_form(root_client, url), notes="Prefers e-mail")
    assert response.status_code == 302
    assert Customer.objects.using("customers").get(pk=ann.pk).notes == "Prefers e-mail"


def test_a_change_to_a_field_the_form_does_not_show_is_kept(root_client, other_client):
    """An action counts a contact while the form is open: the form's save keeps the count."""
    ann = seed_customers("customers")["ann"]
    url = admin_url("customers", Customer, "change", ann.pk)
    mine = open_form(root_client, url)
    changelist = admin_url("customers", Customer, "changelist")
    action = other_client.post(changelist, {"action": "record_contact", "_selected_action": [ann.pk]})
    assert action.status_code == 302
    assert submit(root_client, url, mine, notes="Met at the fair").status_code == 302
    stored = Customer.objects.using("customers").get(pk=ann.pk)
    assert (stored.notes, stored.contact_count) == ("Met at the fair", 1)


def test_a_change_to_the_tags_since_the_form_was_opened_is_a_conflict(root_client, other_client):
    data = seed_customers("customers")
    ann, loyal = data["ann"], data["tags"][1]
    url = admin_url("customers", Customer, "change", ann.pk)
    theirs, mine = open_form(other_client, url), open_form(root_client, url)
    assert submit(other_client, url, theirs, tags=[str(t.pk) for t in data["tags"]]).status_code == 302
    stale = submit(root_client, url, mine, notes="x")
    assert "Tags: saved now “" in errors_of(stale) and CONFLICT in errors_of(stale)
    assert set(ann.tags.using("customers").values_list("pk", flat=True)) == {t.pk for t in data["tags"]}
    assert loyal.pk in ann.tags.using("customers").values_list("pk", flat=True)


def test_a_stale_inline_row_is_refused_and_the_parent_is_not_saved(root_client, other_client):
    ann = seed_customers("customers")["ann"]
    address = ann.addresses.using("customers").get()
    url = admin_url("customers", Customer, "change", ann.pk)
    mine = open_form(root_client, url)
    address_url = admin_url("customers", Address, "change", address.pk)
    assert submit(other_client, address_url, open_form(other_client, address_url), city="Potsdam").status_code == 302

    # The stale form changes the inline's street and the customer's notes.
    street = next(name for name in mine if name.startswith("addresses-") and name.endswith("-line1"))
    stale = submit(root_client, url, mine, **{street: "Nebenstr. 2"}, notes="moved")
    assert stale.status_code == 200
    assert "City: saved now “Potsdam”, yours “Berlin”" in errors_of(stale)
    stored = Address.objects.using("customers").get(pk=address.pk)
    assert (stored.line1, stored.city) == ("Hauptstr. 1", "Potsdam")
    assert Customer.objects.using("customers").get(pk=ann.pk).notes == ""


def test_a_stale_list_editable_row_is_refused(root_client, other_client):
    vip = seed_customers("customers")["tags"][0]
    changelist = admin_url("customers", Tag, "changelist")
    mine = open_form(root_client, changelist, "changelist-form")
    url = admin_url("customers", Tag, "change", vip.pk)
    assert submit(other_client, url, open_form(other_client, url), name="gold").status_code == 302

    row = next(
        name.removesuffix("-id") for name, value in mine.items() if name.endswith("-id") and value == [str(vip.pk)]
    )
    stale = root_client.post(changelist, {**mine, f"{row}-name": "silver", "_save": "Save"})
    assert stale.status_code == 200
    assert "Name: saved now “gold”, yours “silver”" in errors_of(stale)
    assert Tag.objects.using("customers").get(pk=vip.pk).name == "gold"


def test_a_list_row_left_as_it_was_is_still_refused_when_it_is_stale(root_client, other_client):
    """Django would save the stale row back (it differs from the stored one): the list save is refused whole."""
    vip, loyal = seed_customers("customers")["tags"]
    changelist = admin_url("customers", Tag, "changelist")
    mine = open_form(root_client, changelist, "changelist-form")
    url = admin_url("customers", Tag, "change", vip.pk)
    assert submit(other_client, url, open_form(other_client, url), name="gold").status_code == 302
    row = next(
        name.removesuffix("-id") for name, value in mine.items() if name.endswith("-id") and value == [str(loyal.pk)]
    )
    stale = root_client.post(changelist, {**mine, f"{row}-name": "faithful", "_save": "Save"})
    assert stale.status_code == 200
    assert "Name: saved now “gold”, yours “vip”" in errors_of(stale)
    assert sorted(Tag.objects.using("customers").values_list("name", flat=True)) == ["gold", "loyal"]


@pytest.mark.parametrize(
    "token",
    ["", "forged", "x" * 50_000, "eyJwayI6IjEifQ:1tXYZ:abcdefabcdefabcdef", "'; DROP TABLE customers_customer; --"],
    ids=["missing", "forged", "huge", "wrong-signature", "sql"],
)
def test_a_missing_or_forged_token_is_a_conflict_not_a_500(root_client, token):
    ann = seed_customers("customers")["ann"]
    url = admin_url("customers", Customer, "change", ann.pk)
    data = open_form(root_client, url)
    data[STATE_FIELD] = [token]
    response = submit(root_client, url, data, name="Mallory")
    assert response.status_code == 200
    assert "does not say which values" in errors_of(response)
    assert Customer.objects.using("customers").get(pk=ann.pk).name == "Ann Archer"


def test_a_token_of_another_record_is_a_conflict(root_client):
    data = seed_customers("customers")
    ann, bob = data["ann"], data["bob"]
    bobs = open_form(root_client, admin_url("customers", Customer, "change", bob.pk))
    url = admin_url("customers", Customer, "change", ann.pk)
    mine = open_form(root_client, url)
    mine[STATE_FIELD] = bobs[STATE_FIELD]
    response = submit(root_client, url, mine, name="Mallory")
    assert "does not say which values" in errors_of(response)
    assert Customer.objects.using("customers").get(pk=ann.pk).name == "Ann Archer"


def test_a_token_of_the_same_key_on_another_panel_is_a_conflict(root_client):
    """Archive and customers share keys: a token is signed for its panel's database."""
    ann = seed_customers("customers")["ann"]
    copy = Customer(pk=ann.pk, name=ann.name, email=ann.email, country=ann.country)
    copy.save(using="archive")
    archived = open_form(root_client, admin_url("archive", Customer, "change", copy.pk))
    url = admin_url("customers", Customer, "change", ann.pk)
    mine = open_form(root_client, url)
    mine[STATE_FIELD] = archived[STATE_FIELD]
    assert "does not say which values" in errors_of(submit(root_client, url, mine, name="Mallory"))


def test_a_password_set_meanwhile_is_kept_by_a_save_of_the_user_form(root_client, other_client):
    """The form shows the password hash read-only and cannot change it: a new password is not put back."""
    dora = seed_user()
    url = admin_url("users", User, "change", dora.pk)
    mine = open_form(root_client, url)
    password_url = admin_url("users", User, "password_change", dora.pk)
    changed = other_client.post(password_url, {"password1": "N3w-pass-phrase", "password2": "N3w-pass-phrase"})
    assert changed.status_code == 302
    assert submit(root_client, url, mine, first_name="Dot").status_code == 302
    stored = User.objects.using("users").get(pk=dora.pk)
    assert stored.first_name == "Dot"
    assert stored.check_password("N3w-pass-phrase")


def test_a_conflict_on_the_user_form_shows_no_password_hash(root_client, other_client):
    dora = seed_user()
    url = admin_url("users", User, "change", dora.pk)
    mine = open_form(root_client, url)
    password_url = admin_url("users", User, "password_change", dora.pk)
    assert (
        other_client.post(password_url, {"password1": "N3w-pass-phrase", "password2": "N3w-pass-phrase"}).status_code
        == 302
    )
    assert submit(other_client, url, open_form(other_client, url), email="dot@example.com").status_code == 302
    stale = submit(root_client, url, mine, first_name="Dot")
    page = errors_of(stale)
    assert CONFLICT in page and "Email address: saved now “dot@example.com”" in page
    stored = User.objects.using("users").get(pk=dora.pk)
    assert stored.password.split("$")[-1] not in page and stored.password not in page
    assert (stored.first_name, stored.check_password("N3w-pass-phrase")) == ("Dora", True)


def test_the_state_token_reveals_no_value(root_client):
    """The token holds keyed hashes: neither the name nor the password hash can be read from it."""
    from django.core import signing

    dora = seed_user()
    token = open_form(root_client, admin_url("users", User, "change", dora.pk))[STATE_FIELD][0]
    state = signing.Signer(salt="admin_site.concurrency:users:auth.user").unsign_object(token)
    readable = repr(state)
    assert "Dora" not in readable and "dora@example.com" not in readable and dora.password not in readable
    assert set(state["fields"]) >= {"first_name", "email"}
    assert all(re.fullmatch(r"[0-9a-f]{16}", value) for value in state["fields"].values())


def test_a_record_deleted_meanwhile_is_not_recreated(root_client, other_client):
    tag = seed_customers("customers")["tags"][0]
    url = admin_url("customers", Tag, "change", tag.pk)
    mine = open_form(root_client, url)
    Tag.objects.using("customers").filter(pk=tag.pk).delete()
    response = submit(root_client, url, mine, name="ghost")
    assert response.status_code in (200, 302)
    assert not Tag.objects.using("customers").filter(name="ghost").exists()


# -- imports: the preview is the form ---------------------------------------------------------------


def update_file(*customers, **changes):
    """A CSV that updates ``customers`` by id, each with ``changes``."""
    lines = ["id,name,email,country,status,tier"]
    for c in customers:
        row = {"name": c.name, "email": c.email, "country": c.country, "status": c.status, "tier": c.tier, **changes}
        lines.append(f"{c.pk},{row['name']},{row['email']},{row['country']},{row['status']},{row['tier']}")
    return "\n".join(lines) + "\n"


def test_an_import_confirmed_after_someone_changed_a_row_it_updates_writes_nothing(root_client, other_client):
    data = seed_customers("customers")
    ann, bob = data["ann"], data["bob"]
    preview = upload(root_client, "customers", Customer, update_file(bob, ann, tier="gold"))
    assert preview.status_code == 200 and "import_file_name" in form_data(preview.content)

    url = admin_url("customers", Customer, "change", ann.pk)
    assert submit(other_client, url, open_form(other_client, url), name="Ann A.").status_code == 302
    response = confirm(root_client, "customers", Customer, preview)

    assert response.status_code == 409
    assert f"This customer ({ann.pk}) was changed by someone else after the preview" in page_text(response)
    assert [problem.row for problem in response.context["result"].problems] == [3]  # the file row of Ann
    stored = {c.pk: (c.name, c.tier) for c in Customer.objects.using("customers").filter(pk__in=[ann.pk, bob.pk])}
    assert stored == {ann.pk: ("Ann A.", ann.tier), bob.pk: (bob.name, bob.tier)}
    assert TransferRecord.objects.get().outcome == "rejected"


def test_an_import_keeps_a_change_made_since_the_preview_to_a_column_the_file_lacks(root_client, other_client):
    ann = seed_customers("customers")["ann"]
    preview = upload(root_client, "customers", Customer, update_file(ann, tier="gold"))
    url = admin_url("customers", Customer, "change", ann.pk)
    assert submit(other_client, url, open_form(other_client, url), phone="+49 30 1234567").status_code == 302
    assert confirm(root_client, "customers", Customer, preview).status_code == 302
    stored = Customer.objects.using("customers").get(pk=ann.pk)
    assert (stored.tier, stored.phone) == ("gold", "+49 30 1234567")


def test_an_import_confirmed_after_a_row_it_updates_was_deleted_writes_nothing(root_client):
    data = seed_customers("customers")
    bob, carla = data["bob"], data["acme"]
    preview = upload(root_client, "customers", Customer, update_file(bob, carla, tier="gold"))
    Customer.objects.using("customers").filter(pk=carla.pk).delete()
    response = confirm(root_client, "customers", Customer, preview)
    assert response.status_code == 409
    assert "changed by someone else" in page_text(response)
    assert Customer.objects.using("customers").get(pk=bob.pk).tier == bob.tier
    assert not Customer.objects.using("customers").filter(pk=carla.pk).exists()


def test_an_import_confirmed_with_no_change_in_between_updates_its_rows(root_client):
    bob = seed_customers("customers")["bob"]
    preview = upload(root_client, "customers", Customer, update_file(bob, name="Robert Baker"))
    assert confirm(root_client, "customers", Customer, preview).status_code == 302
    assert Customer.objects.using("customers").get(pk=bob.pk).name == "Robert Baker"


def test_a_confirm_whose_preview_notes_are_gone_is_refused(root_client, import_dir):
    bob = seed_customers("customers")["bob"]
    preview = upload(root_client, "customers", Customer, update_file(bob, name="Robert Baker"))
    for notes in import_dir.glob("*.rows"):
        notes.unlink()
    response = confirm(root_client, "customers", Customer, preview)
    assert response.status_code == 302
    assert Customer.objects.using("customers").get(pk=bob.pk).name == "Bob Baker"
    assert "upload it again" in page_text(root_client.get(response["Location"]))
    assert not list(import_dir.iterdir())  # the upload went too


def test_a_read_only_page_shows_no_state_field(client):
    """Someone who may only view gets no form, so no token, and never a "Console state" row."""
    from django.contrib.auth.models import Permission

    ann = seed_customers("customers")["ann"]
    viewer = User.objects.db_manager("users").create_user("vera", "vera@example.com", "pw", is_staff=True)
    codenames = ["access_customers", "view_customer", "view_address", "view_order"]
    viewer.user_permissions.set(Permission.objects.using("users").filter(codename__in=codenames))
    client.force_login(viewer)
    page = client.get(admin_url("customers", Customer, "change", ann.pk))
    assert page.status_code == 200 and "Ann Archer" in page.content.decode()
    assert STATE_FIELD not in page.content.decode() and "Console state" not in page.content.decode()


# -- what a stranger found ------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["abc", "1.5", "9" * 30])
def test_a_mistyped_key_on_a_stale_form_is_a_form_error_not_a_500(root_client, other_client, typed):
    data = seed_customers("customers")
    order = data["order"]
    url = admin_url("customers", Order, "change", order.pk)
    mine = open_form(root_client, url)
    assert submit(other_client, url, open_form(other_client, url), customer=str(data["bob"].pk)).status_code == 302
    stale = submit(root_client, url, mine, customer=typed)
    assert stale.status_code == 200
    page = errors_of(stale)
    assert CONFLICT in page and "Customer: saved now “Bob Baker" in page
    assert Order.objects.using("customers").get(pk=order.pk).customer_id == data["bob"].pk


def test_mistyped_tags_on_a_stale_form_are_a_form_error_not_a_500(root_client, other_client):
    data = seed_customers("customers")
    ann = data["ann"]
    url = admin_url("customers", Customer, "change", ann.pk)
    mine = open_form(root_client, url)
    assert (
        submit(other_client, url, open_form(other_client, url), tags=[str(t.pk) for t in data["tags"]]).status_code
        == 302
    )
    stale = submit(root_client, url, mine, tags=["abc"])
    assert stale.status_code == 200 and CONFLICT in errors_of(stale)


def test_deleting_an_inline_row_someone_changed_meanwhile_is_refused(root_client, other_client):
    ann = seed_customers("customers")["ann"]
    address = ann.addresses.using("customers").get()
    url = admin_url("customers", Customer, "change", ann.pk)
    mine = open_form(root_client, url)
    address_url = admin_url("customers", Address, "change", address.pk)
    assert submit(other_client, address_url, open_form(other_client, address_url), city="Potsdam").status_code == 302

    row = next(
        name.removesuffix("-id")
        for name, value in mine.items()
        if name.startswith("addresses-") and name.endswith("-id") and value == [str(address.pk)]
    )
    stale = submit(root_client, url, mine, **{f"{row}-DELETE": "on"})
    assert stale.status_code == 200
    page = errors_of(stale)
    assert "Not deleted: someone else changed “Hauptstr. 1" in page
    assert "City: saved now “Potsdam”" in page
    assert Address.objects.using("customers").get(pk=address.pk).city == "Potsdam"


def test_an_inline_row_deleted_meanwhile_is_named_not_a_silent_error(root_client):
    ann = seed_customers("customers")["ann"]
    Address(customer=ann, line1="Zweite Str. 2", city="Hamburg", postcode="20095", country="DE").save(using="customers")
    url = admin_url("customers", Customer, "change", ann.pk)
    mine = open_form(root_client, url)
    gone = ann.addresses.using("customers").get(city="Hamburg")
    gone.delete(using="customers")
    stale = submit(root_client, url, mine, notes="still here")
    assert stale.status_code == 200
    assert "One of the addresses on this page was deleted by someone else after you opened it" in errors_of(stale)
    assert Customer.objects.using("customers").get(pk=ann.pk).notes == ""


def test_a_list_row_deleted_meanwhile_is_named(root_client):
    vip, loyal = seed_customers("customers")["tags"]
    changelist = admin_url("customers", Tag, "changelist")
    mine = open_form(root_client, changelist, "changelist-form")
    mine.pop("action", None)
    Tag.objects.using("customers").filter(pk=vip.pk).delete()
    row = next(
        name.removesuffix("-id") for name, value in mine.items() if name.endswith("-id") and value == [str(loyal.pk)]
    )
    stale = root_client.post(changelist, {**mine, f"{row}-name": "faithful", "_save": "Save"})
    assert stale.status_code == 200
    assert "One of the tags on this page was deleted by someone else after you opened it" in errors_of(stale)
    assert Tag.objects.using("customers").get(pk=loyal.pk).name == "loyal"
