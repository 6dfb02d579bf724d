"""Every private name the adapters rely on still exists, with the signature we call it with.

A failure names the library, the owner and the name: the place to look when
Django, django-import-export, PyMySQL or openpyxl is upgraded.
"""

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.models.sql.query import Query

import admin_site.adapters
from admin_site.adapters import Private

ADAPTERS = [
    importlib.import_module(f"admin_site.adapters.{module.name}")
    for module in pkgutil.iter_modules(admin_site.adapters.__path__)
]
NAMES = [
    pytest.param(entry, id=f"{adapter.__name__.rsplit('.', 1)[1]}:{entry.owner}.{entry.name}")
    for adapter in ADAPTERS
    for entry in adapter.PRIVATE_NAMES
]


@pytest.mark.parametrize("entry", NAMES)
def test_the_installed_library_still_has_the_private_name(entry):
    assert entry.problem() is None, entry.problem()


def test_a_changed_name_or_signature_is_named():
    """The check itself can fail: a name that is gone, and a call that no longer fits."""
    assert "has no '_no_such_name'" in Private("django.db.models.query:QuerySet", "_no_such_name").problem()
    assert "takes" in Private("django.db.models.query:QuerySet", "_chain", ("self", "extra")).problem()
    assert Private("django.db.models.query:QuerySet", "_chain", ("self",)).problem() is None
    query = Private("django.db.models.sql.query:Query", "no_such_attribute", sample=lambda: Query(None))
    assert "has no 'no_such_attribute'" in query.problem()
    assert Private("django.db.models.sql.query:Query", "where", sample=lambda: Query(None)).problem() is None


def test_no_private_name_is_used_outside_the_adapters():
    """``tools/private_names.py`` finds none outside ``admin_site/adapters/``."""
    tool = Path(__file__).resolve().parents[1] / "tools" / "private_names.py"
    result = subprocess.run([sys.executable, str(tool), "--list"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
