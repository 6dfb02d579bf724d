"""Every model of every panel: export it from the admin, import that file back, nothing changes.

For each ModelAdmin registered on each panel, a superuser exports the
changelist as CSV, and as XLSX, with every field ticked, uploads exactly that
file on the model's import page and confirms it.  The preview must list no
problem and count every row as unchanged, the confirm must redirect and
record no row in the history (only the import's summary), and afterwards
every database holds what it held before: the panel's rows field by field (many-to-many links included), and
every other table of every alias.  The only writes allowed are the console's
own bookkeeping (the audit record, admin history, the session) and the change
times that ``auto_now`` fields take from any save.

Models the admin offers no import for are skipped by name, with the reason.
"""

import csv
import io
import itertools
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch
from django.utils import timezone
from openpyxl import load_workbook

from admin_site.models import PanelLogEntry, TransferRecord
from admin_site.sites import all_sites
from admin_site.transfers.formats import IMPORT_FORMATS
from console.customers.models import BusinessCustomer, Customer
from console.legacy.models import Custmast
from tests.conftest import ALL_DATABASES
from tests.utils import admin_url, console_alias, export_file, form_data
from tests.walk import seed_panel

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

CSV_FORMAT = str(next(i for i, cls in enumerate(IMPORT_FORMATS) if cls.__name__ == "CSV"))
XLSX_FORMAT = str(next(i for i, cls in enumerate(IMPORT_FORMATS) if cls.__name__ == "XLSX"))
#: Export form format indexes (the admin's order: CSV, XLSX, ...).
EXPORT_FORMATS = {"csv": "0", "xlsx": "1"}

#: The console's own records of what happened: an import and its request write these, nothing else.
BOOKKEEPING = (TransferRecord, LogEntry, PanelLogEntry, Session)

#: Round trips known to fail: model label -> (symptom in the failure, reason).  The case is marked
#: xfail only when that very symptom shows; any other failure fails the test.
KNOWN_FAILURES = {}


def cases():
    """(panel, model, file format) for every ModelAdmin of every panel, in registration order."""
    return [
        pytest.param(panel, model, file_format, id=f"{panel}-{model._meta.label}-{file_format}")
        for panel, site in all_sites().items()
        for model, file_format in itertools.product(site._registry, EXPORT_FORMATS)
    ]


# -- data ----------------------------------------------------------------------------


def seed(panel):
    """The panel's demo rows (``tests.walk.seed_panel``), plus what makes every column kind non-empty."""
    seed_panel(panel)
    held = settings.CONSOLE_DATABASES[panel]["apps"]
    if "auth" in held:  # a group with permissions, and a user in it with one of their own
        desk = Group(name="Front desk")
        desk.save(using=panel)
        desk.permissions.set(Permission.objects.using(panel).filter(codename__in=["view_team", "view_profile"]))
        dora = User.objects.using(panel).get(username="dora")
        dora.groups.set([desk])
        dora.user_permissions.set(Permission.objects.using(panel).filter(codename="change_team"))
    if "customers" in held:
        # Text a spreadsheet would run (the export guards it, the import takes the guard back),
        # and line ends inside a cell.
        tricky = Customer(
            name="=Eve Evans",
            email="eve@example.com",
            phone="+49 30 1234",
            country="IT",
            status="active",
            tier="vip",
            notes="\rfirst line\r\nsecond line\n@third",
        )
        tricky.save(using=panel)
        # A second company without a VAT number: the unique column holds NULL twice.
        BusinessCustomer(name="Dan Dorn", email="dan@bolt.example", country="AT", company_name="Bolt AG").save(
            using=panel
        )
    if "legacy" in held:
        # A change time with microseconds (where the column keeps them), which the export's cells do not carry.
        first = Custmast.objects.using(panel).order_by("custno").first()
        Custmast.objects.using(panel).filter(pk=first.pk).update(
            lastchg=timezone.now().replace(microsecond=123456), credit_limit=Decimal("1234.50")
        )


def tables(alias):
    """Every model whose table ``alias`` holds (many-to-many tables included)."""
    found = []
    for label in settings.CONSOLE_DATABASES[alias]["apps"]:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            opts = model._meta
            if opts.proxy or model in BOOKKEEPING:
                continue
            found.append(model)
    return found


def compared_fields(model):
    """Concrete columns, without the change times any save moves (``auto_now``)."""
    return [f for f in model._meta.concrete_fields if not getattr(f, "auto_now", False)]


def snapshot(alias):
    """model label -> sorted rows of (column, value): the whole database but the bookkeeping."""
    state = {}
    for model in tables(alias):
        names = [f.attname for f in compared_fields(model)]
        if model._meta.auto_created:  # a many-to-many table: its links, not their surrogate ids
            names.remove(model._meta.pk.attname)
        rows = model._base_manager.using(alias).values_list(*names)
        state[model._meta.label] = sorted((tuple(zip(names, row, strict=True)) for row in rows), key=repr)
    return state


def differences(before, after):
    """Human-readable rows that changed, appeared or went, per model."""
    found = []
    for label in before:
        old, new = set(before[label]), set(after[label])
        if old == new:
            continue
        by_pk = {row[0]: row for row in new - old}  # (the first column: the pk, or a link's first end)
        for row in sorted(old - new, key=repr):
            changed = by_pk.pop(row[0], None)
            if changed is None:
                found.append(f"{label}: row gone: {dict(row)}")
                continue
            fields = {name: (value, dict(changed)[name]) for name, value in row if dict(changed)[name] != value}
            found.append(f"{label} {row[0]}: {fields}")
        found += [f"{label}: row added: {dict(row)}" for row in by_pk.values()]
    return found


def imported_rows(panel, model, header):
    """The model's rows on the panel, by pk: each exported field's value (related pks for many-to-many)."""
    opts = model._meta
    fields = {}
    for name in header:
        try:
            fields[name] = opts.get_field(name)
        except Exception:
            continue
    rows = {}
    for obj in model._default_manager.using(panel).all():
        row = {}
        for name, field in fields.items():
            if field.many_to_many:
                row[name] = sorted(getattr(obj, name).values_list("pk", flat=True))
            elif not getattr(field, "auto_now", False):
                row[name] = getattr(obj, field.attname)
        rows[obj.pk] = row
    return rows


def field_changes(before, after):
    """``pk.field: old -> new`` for every exported value that differs; rows added or gone."""
    found = [f"row {pk} gone" for pk in before.keys() - after.keys()]
    found += [f"row {pk} added" for pk in after.keys() - before.keys()]
    for pk in before.keys() & after.keys():
        found += [
            f"{pk}.{name}: {value!r} -> {after[pk][name]!r}"
            for name, value in before[pk].items()
            if after[pk][name] != value
        ]
    return found


# -- the round trip ------------------------------------------------------------------


def import_refusal(model_admin, request):
    """Why the admin offers no import for this model, or None."""
    if not hasattr(model_admin, "has_import_permission"):
        return "its admin has no import (not import-enabled)"
    if not model_admin.has_import_permission(request):
        return "its admin refuses import to a superuser (read-only: no add/change permission)"
    return None


@pytest.mark.parametrize(("panel", "model", "file_format"), cases())
def test_an_exported_file_imports_back_without_changing_any_database(
    root_client, rf, superuser, panel, model, file_format
):
    model_admin = all_sites()[panel]._registry[model]
    request = rf.get("/")
    request.user = superuser
    refusal = import_refusal(model_admin, request)
    if refusal is not None:
        try:
            assert root_client.get(admin_url(panel, model, "import")).status_code == 403
        except NoReverseMatch:
            refusal += "; no import address at all"
        pytest.skip(f"{model._meta.label} on {panel}: {refusal}")

    seed(panel)
    assert model._default_manager.using(panel).exists(), "the round trip needs rows to carry"
    try:
        round_trip(root_client, panel, model, file_format)
    except AssertionError as failure:
        symptom, reason = KNOWN_FAILURES.get(model._meta.label, (None, None))
        if symptom is not None and symptom in str(failure):
            pytest.xfail(reason)
        raise


def header_of(exported, file_format):
    if file_format == "csv":
        return next(csv.reader(io.StringIO(exported.decode("utf-8"))))
    return [cell.value for cell in next(load_workbook(io.BytesIO(exported), read_only=True).active.iter_rows())]


def round_trip(client, panel, model, file_format):
    before = {alias: snapshot(alias) for alias in ALL_DATABASES}
    entries = LogEntry.objects.using(console_alias())
    logged_before = set(entries.values_list("pk", flat=True))

    response = export_file(client, panel, model, EXPORT_FORMATS[file_format])
    assert response.status_code == 200 and response.streaming, f"export answered {response.status_code}"
    exported = b"".join(response.streaming_content)
    header = header_of(exported, file_format)
    import_format = {"csv": CSV_FORMAT, "xlsx": XLSX_FORMAT}[file_format]
    for key in model._meta.pk_fields:  # every column of a composite key
        assert key.name in header or key.attname in header, f"no key column {key.name} in {header}"
    rows = imported_rows(panel, model, header)

    preview = client.post(
        admin_url(panel, model, "import"),
        {"format": import_format, "import_file": SimpleUploadedFile(f"export.{file_format}", exported)},
    )
    assert preview.status_code == 200, f"preview answered {preview.status_code}"
    result = preview.context["result"]
    problems = [str(p) for p in getattr(result, "problems", [])]
    assert not problems, f"the preview lists problems: {problems}"
    assert not result.has_errors() and not result.has_validation_errors()
    assert result.totals["new"] == 0 and result.totals["delete"] == 0, dict(result.totals)
    assert result.total_rows == len(rows)
    # An unchanged file previews as unchanged, every row.
    assert result.totals["update"] == 0 and result.totals["skip"] == len(rows), dict(result.totals)
    assert "0 updated" in preview.text and f"{len(rows)} unchanged" in preview.text

    fields = form_data(preview.content)
    data = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert "import_file_name" in data, "the preview offered no confirm form"
    confirmed = client.post(admin_url(panel, model, "process_import"), data)
    refused = [str(p) for p in getattr(confirmed.context and confirmed.context.get("result"), "problems", [])]
    assert confirmed.status_code == 302, f"confirm answered {confirmed.status_code}: {refused}"

    changed = field_changes(rows, imported_rows(panel, model, header))
    assert not changed, f"exported fields changed: {changed}"
    after = {alias: snapshot(alias) for alias in ALL_DATABASES}
    changed = {alias: differences(before[alias], after[alias]) for alias in ALL_DATABASES}
    assert not any(changed.values()), f"the round trip changed rows: {changed}"
    record = TransferRecord.objects.using("users").filter(kind="import").get()
    assert (record.database, record.model, record.outcome) == (panel, model._meta.label, "success")
    assert (record.rows_updated, record.rows_skipped) == (0, len(rows))
    # The history holds the import's summary, and no row's entry.
    logged = list(entries.exclude(pk__in=logged_before))
    assert [(entry.object_id, entry.change_message) for entry in logged] == [
        (None, f"Imported export.{file_format}: 0 new, 0 updated, 0 deleted, {len(rows)} unchanged rows.")
    ]


def test_every_panel_has_a_case_and_every_case_a_model_with_an_admin():
    labels = {(panel, model._meta.label) for panel, site in all_sites().items() for model in site._registry}
    assert {panel for panel, _ in labels} == set(ALL_DATABASES)
    for expected in [
        ("users", "auth.User"),
        ("users", "auth.Group"),
        ("users", "profiles.Team"),
        ("users", "profiles.Profile"),
        ("users", "admin_site.TransferRecord"),
        ("customers", "customers.VipCustomer"),
        ("customers", "customers.ActiveCustomer"),
        ("customers", "customers.BusinessCustomer"),
        ("archive", "customers.VipCustomer"),
        ("legacy", "legacy.Custmast"),
        ("legacy", "legacy.Invoice"),
    ]:
        assert expected in labels
    assert len(cases()) == len(labels) * len(EXPORT_FORMATS)
    assert set(KNOWN_FAILURES) <= {label for _, label in labels}


def preview_and_confirm(client, panel, model, data, file_name="changed.csv"):
    preview = client.post(
        admin_url(panel, model, "import"),
        {"format": CSV_FORMAT, "import_file": SimpleUploadedFile(file_name, data)},
    )
    assert preview.status_code == 200
    fields = form_data(preview.content)
    confirm = {k: fields[k] for k in ("import_file_name", "original_file_name", "format", "resource") if k in fields}
    assert client.post(admin_url(panel, model, "process_import"), confirm).status_code == 302
    return preview.context["result"].totals


def edited_export(client, panel, model, edit):
    """The CSV export with ``edit(row)`` applied to each row (a dict of column -> cell)."""
    response = export_file(client, panel, model, EXPORT_FORMATS["csv"])
    text = b"".join(response.streaming_content).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    out = io.StringIO()
    writer = csv.DictWriter(out, reader.fieldnames, lineterminator="\r\n")
    writer.writeheader()
    for row in reader:
        edit(row)
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def test_only_the_rows_a_file_changes_preview_as_updated_and_are_written(root_client):
    """A changed cell, or a changed many-to-many cell, makes its row "updated"; the rest stay unchanged."""
    seed("customers")
    customers = Customer.objects.using("customers")
    second = customers.filter(tags__isnull=False).order_by("pk").first()
    first = customers.exclude(pk=second.pk).order_by("pk").first()
    total = customers.count()
    entries = LogEntry.objects.using(console_alias())
    logged_before = set(entries.values_list("pk", flat=True))

    def edit(row):
        if row["id"] == str(first.pk):
            row["phone"] = "+81 3 5550 0108"
        if row["id"] == str(second.pk):
            row["tags"] = ""  # the stored rows have tags: this removes them

    totals = preview_and_confirm(
        root_client, "customers", Customer, edited_export(root_client, "customers", Customer, edit)
    )
    assert (totals["update"], totals["skip"], totals["new"]) == (2, total - 2, 0)
    assert customers.get(pk=first.pk).phone == "+81 3 5550 0108"
    assert not customers.get(pk=second.pk).tags.exists()
    rows_logged = entries.exclude(pk__in=logged_before).exclude(object_id=None)
    assert sorted(rows_logged.values_list("object_id", flat=True)) == sorted([str(first.pk), str(second.pk)])


def test_an_update_keeps_what_the_file_cannot_carry_of_its_unchanged_columns(root_client):
    """A change time's microseconds are not in the file: changing another column of the row keeps them."""
    seed("legacy")
    rows = Custmast.objects.using("legacy")
    changed = rows.order_by("custno").first()
    if changed.lastchg.microsecond == 0:
        pytest.skip("this database's LASTCHG column keeps no fractions of a second")

    def edit(row):
        if row["custno"] == str(changed.pk):
            row["city"] = "Osaka"

    totals = preview_and_confirm(root_client, "legacy", Custmast, edited_export(root_client, "legacy", Custmast, edit))
    assert (totals["update"], totals["skip"]) == (1, rows.count() - 1)
    after = rows.get(pk=changed.pk)
    assert (after.city, after.lastchg) == ("Osaka", changed.lastchg)
