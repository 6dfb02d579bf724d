"""Files of new rows are prepared a column at a time (``admin_site.transfers.bulk``): they must accept,
refuse and store exactly what the stock per-row path does."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test.utils import isolate_apps
from import_export import resources as stock_resources

from admin_site.transfers import resources
from admin_site.transfers.bulk import FieldCleaner, create_rows
from admin_site.transfers.imports import read_dataset, run_import
from console.customers.models import ActiveCustomer, BusinessCustomer, Customer, OrderLine, Tag, VipCustomer
from tests.conftest import ALL_DATABASES, seed_customers
from tests.utils import admin_url, form_data

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

HEADER = "name,email,phone,country,status,tier,notes\n"
GOOD = (
    HEADER + "Ann Archer,Ann@Example.com,+49 30 123456,de,active,gold,\n"
    "Bob Baker,bob@example.com,,FR,lead,standard,likes tea\n"
    "Cleo Cole,cleo@example.com,(030) 555-01,de,active,vip,\n"
)
BAD = (
    HEADER + "Ann Archer,ann@example.com,,DE,active,gold,\n"  # fine
    "Bad Email,not-an-email,,DE,active,gold,\n"
    f"{'N' * 201},long@example.com,,DE,active,gold,\n"
    "Bad Status,status@example.com,,DE,bogus,gold,\n"
    "Bad Country,country1@example.com,,Germany,active,gold,\n"
    "Bad Country Again,country2@example.com,,Germany,active,gold,\n"  # same bad value: memoized, still reported
    "Dup,ANN@example.com,,DE,active,gold,\n"
    "Bad Phone,phone@example.com,call me,DE,active,gold,\n"
)


class StockPathResource(resources.resource_for(Customer)):
    """Overrides a per-row hook, which keeps the stock django-import-export row path."""

    def before_import_row(self, row, **kwargs):
        super().before_import_row(row, **kwargs)


def run(resource_class, text, *, dry_run=False, alias="customers", **kwargs):
    return run_import(resource_class(using=alias), read_dataset(text.encode(), "csv"), dry_run=dry_run, **kwargs)


@pytest.fixture
def no_stock_rows(monkeypatch):
    """Fail if the stock row path runs: proves the new-rows path is the one under test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the stock row path ran")

    monkeypatch.setattr(stock_resources.ModelResource, "import_row", refuse)


def stored(alias):
    return sorted(
        Customer.objects.using(alias).values_list("name", "email", "phone", "country", "status", "tier", "notes")
    )


def test_new_rows_path_reports_the_same_problems_as_the_stock_path(monkeypatch):
    stock = [(p.row, p.column, p.message) for p in run(StockPathResource, BAD).problems]
    with monkeypatch.context() as m:
        m.setattr(stock_resources.ModelResource, "import_row", lambda *a, **k: pytest.fail("stock row path ran"))
        fast = [(p.row, p.column, p.message) for p in run(resources.resource_for(Customer), BAD).problems]
    assert fast == stock
    assert {row for row, _, _ in fast} == {3, 4, 5, 6, 7, 8, 9}
    assert {(6, "country"), (7, "country")} <= {(r, c) for r, c, _ in fast}
    assert Customer.objects.using("customers").count() == 0


def test_new_rows_path_stores_what_the_stock_path_stores(no_stock_rows, monkeypatch):
    result = run(resources.resource_for(Customer), GOOD)
    assert not result.problems and result.totals["new"] == 3
    fast = stored("customers")
    monkeypatch.undo()
    result = run(StockPathResource, GOOD, alias="archive")
    assert not result.problems
    assert fast == stored("archive")
    assert ("Ann Archer", "ann@example.com", "+49 30 123456", "DE", "active", "gold", "") in fast  # clean() ran
    references = set(Customer.objects.using("customers").values_list("reference", flat=True))
    assert len(references) == 3, "a callable default is called once per row"
    assert Customer.objects.using("customers").filter(created_at__isnull=True).count() == 0


def test_new_rows_preview_writes_nothing(no_stock_rows):
    result = run(resources.resource_for(Customer), GOOD, dry_run=True)
    assert not result.problems and result.totals["new"] == 3
    assert [row.row_values["name"] for row in result.valid_rows()] == ["Ann Archer", "Bob Baker", "Cleo Cole"]
    assert Customer.objects.using("customers").count() == 0


def test_file_without_pks_read_back_still_writes_tags(no_stock_rows):
    """Keeping no row results (the command line) reads no pks back, except where the tags need them."""
    Tag.objects.using("customers").create(name="vip")
    vip = Tag.objects.using("customers").get().pk
    text = "name,email,country,tags\n" + "".join(f"C{i},c{i}@example.com,DE,{vip}\n" for i in range(5))
    assert not run(resources.resource_for(Customer), text, keep_rows=0).problems
    assert Customer.objects.using("customers").count() == 5
    assert Customer.tags.through.objects.using("customers").count() == 5
    text = "name,email,country\n" + "".join(f"D{i},d{i}@example.com,DE\n" for i in range(5))
    assert not run(resources.resource_for(Customer), text, keep_rows=0).problems
    assert Customer.objects.using("customers").filter(name__startswith="D").count() == 5
    assert Customer.objects.using("archive").count() == 0


def test_rows_split_over_many_batches_report_the_same_problems_as_one_batch():
    one = [(p.row, p.column, p.message) for p in run(resources.resource_for(Customer), BAD).problems]
    small = [(p.row, p.column, p.message) for p in run(resources.resource_for(Customer, batch_size=3), BAD).problems]
    assert small == one and len(one) >= 7
    assert Customer.objects.using("customers").count() == 0


def test_rows_split_over_many_batches_are_all_stored():
    text = HEADER + "".join(f"C{i},c{i}@example.com,,DE,active,gold,\n" for i in range(10))
    result = run(resources.resource_for(Customer, batch_size=3), text)
    assert not result.problems and result.totals["new"] == 10
    assert sorted(Customer.objects.using("customers").values_list("name", flat=True)) == sorted(
        f"C{i}" for i in range(10)
    )
    assert Customer.objects.using("archive").count() == 0


STRINGS = [
    "",
    " ",
    "a",
    "DE",
    "de",
    "D",
    "DEU",
    "D1",
    "ÄÖ",
    "+49 30 123456",
    "(030) 555-01",
    "12345",
    "+12345678901234567890123456789012",
    "call me",
    "\x00",
    "ann\x00@example.com",
    "ann@example.com",
    "Ann@Example.COM",
    "ann@localhost",
    "ann@[127.0.0.1]",
    "ann@[300.0.0.1]",
    "ann@-example.com",
    "ann@example",
    "@example.com",
    "ann@@example.com",
    "ann@exa mple.com",
    "a" * 64 + "@example.com",
    "a" * 250 + "@example.com",
    "x" * 200,
    "x" * 201,
    "line\nbreak",
    "tab\there",
    "'+46 8 555",
    "=1+1",
    "日本語",
]


@pytest.mark.parametrize("name", ["name", "email", "phone", "country", "notes"])
def test_quick_acceptance_never_passes_what_field_clean_refuses_or_changes(name):
    """``str_acceptor`` only skips work: whatever it accepts, Django's clean accepts unchanged."""
    import random

    from django.core.exceptions import ValidationError

    from admin_site.transfers.bulk import str_acceptor

    field = Customer._meta.get_field(name)
    accept = str_acceptor(field)
    assert accept is not None
    rng = random.Random(name)
    alphabet = "aZ09 +-()@.[]_\x00é'"
    values = STRINGS + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(400)]
    for value in values:
        try:
            clean_ok = field.clean(value, None) == value
        except ValidationError:
            clean_ok = False
        if field.blank and value == "":
            clean_ok = True  # Model.clean_fields skips blank values of a blank field
        assert accept([value]) == clean_ok, (name, value)
    good, bad = [v for v in values if accept([v])], [v for v in values if not accept([v])]
    assert good and accept(good), "a list is accepted when each of its values is"
    for value in bad[:20]:
        assert not accept([*good, value]), ("one refused value refuses the list", value)


def test_an_import_leaves_the_garbage_collector_alone(monkeypatch):
    """Other threads of a web process are serving other people: an import changes nothing process-wide."""
    import gc

    seen = []
    original = resources.create_rows

    def watch(*args, **kwargs):
        seen.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(resources, "create_rows", watch)
    assert not run(resources.resource_for(Customer), GOOD).problems
    assert seen and all(seen)


# -- proxies and multi-table children ---------------------------------------------------

PROXY_ROWS = (
    "name,email,country,status,tier\n"
    "Ann Archer,ann@example.com,DE,active,vip\n"
    "Bob Baker,bob@example.com,FR,active,vip\n"
)


@pytest.mark.parametrize("model", [VipCustomer, ActiveCustomer])
def test_a_proxy_imports_new_rows_into_its_concrete_table(no_stock_rows, model):
    """A proxy has no local fields of its own: the INSERT takes its concrete model's columns."""
    result = run(resources.resource_for(model), PROXY_ROWS)
    assert not result.problems, [str(p) for p in result.problems]
    assert stored("customers") == [
        ("Ann Archer", "ann@example.com", "", "DE", "active", "vip", ""),
        ("Bob Baker", "bob@example.com", "", "FR", "active", "vip", ""),
    ]
    assert all(row.instance.pk for row in result.rows if row.instance is not None)
    assert Customer.objects.using("archive").count() == 0


def test_a_proxy_imports_through_the_command(tmp_path):
    path = tmp_path / "vip.csv"
    path.write_text(PROXY_ROWS)
    call_command("import_records", "customers.VipCustomer", str(path), database="customers", verbosity=0)
    assert sorted(VipCustomer.objects.using("customers").values_list("email", flat=True)) == [
        "ann@example.com",
        "bob@example.com",
    ]


@pytest.mark.parametrize("model", [VipCustomer, ActiveCustomer])
def test_a_proxy_import_confirmed_in_the_admin_is_stored(root_client, model):
    preview = root_client.post(
        admin_url("customers", model, "import"),
        {"format": "0", "import_file": SimpleUploadedFile("vip.csv", PROXY_ROWS.encode())},
    )
    assert preview.status_code == 200
    fields = form_data(preview.content)
    data = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    response = root_client.post(admin_url("customers", model, "process_import"), data)
    assert response.status_code == 302
    assert Customer.objects.using("customers").count() == 2


def test_a_multi_table_child_still_imports_row_by_row():
    text = PROXY_ROWS.replace("tier\n", "tier,company_name\n").replace("vip\n", "vip,Acme\n")
    result = run(resources.resource_for(BusinessCustomer), text)
    assert not result.problems, [str(p) for p in result.problems]
    assert sorted(BusinessCustomer.objects.using("customers").values_list("email", "company_name")) == [
        ("ann@example.com", "Acme"),
        ("bob@example.com", "Acme"),
    ]
    assert Customer.objects.using("customers").count() == 2


def test_create_rows_refuses_a_multi_table_child_instead_of_writing_half_rows():
    child = BusinessCustomer(name="Half", email="half@example.com", country="DE", company_name="Acme")
    with pytest.raises(ValueError, match="multi-table"):
        create_rows(BusinessCustomer, [child], "customers")
    assert Customer.objects.using("customers").count() == 0


def test_instances_of_a_proxy_are_made_as_the_proxy_with_every_default():
    resource = resources.resource_for(VipCustomer)(using="customers")
    instance = resource.new_instance({"name": "Ann", "email": "ann@example.com", "country": "DE"})
    assert type(instance) is VipCustomer and instance._state.db == "customers"
    assert (instance.status, instance.tier, instance.order_count) == ("lead", "standard", 0)
    assert instance.reference is not None and instance.pk is None


def test_a_proxy_checks_the_constraints_of_its_concrete_model():
    """``Model.full_clean`` validates the parents' constraints too; a proxy declares none of its own."""
    with isolate_apps("console.customers"):

        class LineProxy(OrderLine):
            class Meta:
                proxy = True
                app_label = "customers"

    seed = seed_customers("customers")
    OrderLine(order=seed["order"], sku="SKU-2", unit_price=Decimal("1")).save(using="customers")
    duplicate = LineProxy(order=seed["order"], sku="SKU-2", quantity=1, unit_price=Decimal("1"))
    duplicate._state.db = "customers"
    with pytest.raises(ValidationError) as django_says:
        duplicate.full_clean(validate_unique=False)
    with pytest.raises(ValidationError) as cleaner_says:
        FieldCleaner(LineProxy).full_clean(duplicate, exclude=set())
    assert cleaner_says.value.message_dict == django_says.value.message_dict


def test_a_key_outside_a_proxys_list_is_a_row_problem_in_the_preview(root_client):
    """Found by the attack run: the preview said "1 new", the confirm answered 409 with the database's error."""
    seed = seed_customers("customers")
    outside = seed["bob"]
    Customer.objects.using("customers").filter(pk=outside.pk).update(tier="standard")
    url = admin_url("customers", VipCustomer, "import")
    content = f"id,name,email,country,tier\n{outside.pk},Hijacked,hij@vip.example,SE,vip\n".encode()
    preview = root_client.post(url, {"format": "0", "import_file": SimpleUploadedFile("v.csv", content)})
    text = preview.content.decode()
    assert f"The row with id {outside.pk} is not a VIP customer" in text
    assert "Confirm import" not in text
    assert Customer.objects.using("customers").get(pk=outside.pk).name == outside.name
