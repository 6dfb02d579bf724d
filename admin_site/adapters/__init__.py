"""The private names of Django and the libraries that the console still uses, one module per library.

Outside this package the product uses public APIs only (``tools/private_names.py``
counts the exceptions).  Each module lists what it relies on in ``PRIVATE_NAMES``;
``tests/test_adapters.py`` checks every entry against the installed version, so
an upgrade that drops or changes one is a red test naming it, not a surprise in
production.
"""

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Private:
    """A private name we rely on: ``owner`` (a module or ``module:Class``) has ``name``.

    ``parameters``, when given, are the names of the callable's parameters as we call it.
    ``sample``, for an attribute set on instances (``Query.where``), builds an instance to look on.
    """

    owner: str
    name: str
    parameters: tuple[str, ...] | None = None
    sample: Callable[[], object] | None = None

    def resolve_owner(self):
        module_name, _, qualname = self.owner.partition(":")
        owner = importlib.import_module(module_name)
        for part in filter(None, qualname.split(".")):
            owner = getattr(owner, part)
        return owner

    def problem(self):
        """What is wrong with this name in the installed version, or None."""
        try:
            owner = self.resolve_owner()
        except (ImportError, AttributeError) as error:
            return f"{self.owner} is gone ({error})"
        target = owner if self.sample is None else self.sample()
        if not hasattr(target, self.name):
            return f"{self.owner} has no {self.name!r}"
        if self.parameters is not None:
            found = tuple(inspect.signature(getattr(target, self.name)).parameters)
            if found != self.parameters:
                return f"{self.owner}.{self.name} takes {found}, not {self.parameters}"
        return None
