"""The record of which ModelAdmin serves which model, kept for every panel.

Apps declare their admins once with ``@admin_site.register(Model)``; the panels
are built later from configuration, so an alias an operator adds (an archive
copy of ``customers``) gets the same admins without copied code.
"""

_registry = {}


def register(*models):
    """Class decorator: serve ``models`` with this ModelAdmin on every panel that holds them."""

    def decorator(admin_class):
        for model in models:
            _registry[model] = admin_class
        return admin_class

    return decorator


def registered():
    """(model, admin class) pairs in registration order."""
    return list(_registry.items())
