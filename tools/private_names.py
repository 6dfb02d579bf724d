"""Count the private names of Django and the libraries that the product code uses, file by file.

A private name is an attribute or import with one leading underscore that the
repository does not define itself (``queryset._chain()``,
``from openpyxl.worksheet import _writer``), an import from a private module,
or an internal of Django's query (anything read through ``<x>.query.<name>``
or a compiler).  Files under ``admin_site/adapters/`` are where such names are
allowed; they are counted apart.

Usage: ``python tools/private_names.py [--list]``.
"""

import argparse
import ast
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ["admin_site", "console", "routers.py"]
ADAPTERS = "admin_site/adapters/"
LIBRARIES = ("django", "import_export", "pymysql", "openpyxl", "tablib", "MySQLdb")
#: Query and compiler internals, and undocumented module names: as private as an underscore.
INTERNALS = {
    "get_compiler",
    "execute_sql",
    "results_iter",
    "get_meta",
    "get_select",
    "values_select",
    "annotation_select",
    "extra_select",
    "RFC3986_SUBDELIMS",
    "unbuffered_active",
    "import_data_inner",
}
#: Underscored names Django documents as public: the ``Model._meta`` API, managers, and ``Model._state``
#: (docs/ref/models/instances: "Other attributes").
DOCUMENTED = {"_meta", "_default_manager", "_base_manager", "_state"}


def product_files():
    for entry in PRODUCT:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        yield from (f for f in files if "migrations" not in f.parts)


def private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def own_names(trees):
    """Names the repository defines itself: functions, classes, assignments, attributes it sets."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def library_privates():
    """Private function names the libraries define: a method of ours by that name overrides one of theirs."""
    names = set()
    for library in LIBRARIES:
        spec = importlib.util.find_spec(library)
        if spec is None or not spec.submodule_search_locations:
            continue
        for path in Path(spec.submodule_search_locations[0]).rglob("*.py"):
            names.update(re.findall(r"^\s*def (_[a-z]\w*)\(", path.read_text(encoding="utf-8", errors="replace"), re.M))
    return names


def uses(tree, own, theirs):
    """``(line, name)`` for each private name of a library used in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name in theirs | INTERNALS:
                    yield item.lineno, f"def {item.name} (overrides a library's)"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in INTERNALS:
            yield node.lineno, repr(node.value)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
            if any(private(part) for part in node.module.split(".")):
                yield node.lineno, node.module
            for alias in node.names:
                if private(alias.name) or alias.name in INTERNALS:
                    yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in LIBRARIES and any(private(part) for part in parts):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.Attribute):
            if private(node.attr) and node.attr not in own | DOCUMENTED:
                yield node.lineno, node.attr
            elif getattr(node.value, "attr", getattr(node.value, "id", None)) == "query":
                yield node.lineno, f"query.{node.attr}"
            elif node.attr in INTERNALS:
                yield node.lineno, node.attr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every use, not just the counts")
    options = parser.parse_args(argv)
    files = list(product_files())
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in files}
    own = own_names(trees.values())
    theirs = library_privates()
    outside, inside = Counter(), Counter()
    for path, tree in trees.items():
        name = str(path.relative_to(ROOT))
        for line, used in uses(tree, own, theirs):
            (inside if name.startswith(ADAPTERS) else outside)[name] += 1
            if options.list:
                print(f"{name}:{line}: {used}")
    for name, count in sorted(outside.items()):
        print(f"{count:5d}  {name}")
    print(f"{sum(outside.values()):5d}  outside the adapters ({len(outside)} files)")
    print(f"{sum(inside.values()):5d}  in the adapters ({ADAPTERS})")
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
