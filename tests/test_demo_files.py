"""The demo files shipped in the repo import into their panels and round-trip unchanged."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from console.customers.models import Customer
from console.legacy.models import Custmast
from console.profiles.models import Team
from tests.conftest import ALL_DATABASES

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

FILES = Path(__file__).resolve().parent.parent / "console" / "demo" / "files"
CASES = [
    ("customers.Customer", Customer, "customers.csv", "customers"),
    ("profiles.Team", Team, "teams.csv", "users"),
    ("legacy.Custmast", Custmast, "custmast.csv", "legacy"),
]


@pytest.mark.parametrize("label,model,name,database", CASES)
def test_demo_file_imports_and_round_trips(tmp_path, label, model, name, database):
    lines = (FILES / name).read_text().strip().splitlines()
    call_command("import_records", label, str(FILES / name), database=database, verbosity=0)
    assert model._default_manager.using(database).count() == len(lines) - 1
    before = list(model._default_manager.using(database).order_by("pk").values())

    exported = tmp_path / f"export-{name}"
    call_command("export_records", label, database=database, output=str(exported), verbosity=0)
    call_command("import_records", label, str(exported), database=database, verbosity=0)
    after = list(model._default_manager.using(database).order_by("pk").values())
    for row in before + after:
        row.pop("updated_at", None)
    assert after == before
    for other in ALL_DATABASES:
        if other != database and model._meta.app_label in settings.CONSOLE_DATABASES[other]["apps"]:
            assert model._default_manager.using(other).count() == 0
