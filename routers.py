"""The console's database router: where apps live, migrate and are queried.

Configuration is ``settings.CONSOLE_DATABASES``: each alias lists the apps it
holds.  An app's *home* is the first alias that holds it; an app held by
several aliases (an archive copy of ``customers``) is queried on whichever of
them the running code pinned (``admin_site.pinning``).  Pure: reads settings
and hints, imports no models.
"""

from django.conf import settings

from admin_site.conf import panel_apps
from admin_site.pinning import pinned_database, read_database
from admin_site.replicas import primary_of


def app_label_of(model):
    """Route proxies by their concrete model: a proxy may live in another app."""
    return model._meta.concrete_model._meta.app_label


class PanelRouter:
    """Pinned alias first, then the instance's database, then the app's home."""

    _panels = _holders = None

    @property
    def holders(self):
        """App label -> aliases; recomputed only when the setting object changes."""
        panels = settings.CONSOLE_DATABASES
        if panels is not self._panels:
            self._panels, self._holders = panels, panel_apps(panels)
        return self._holders

    def db_for_write(self, model, **hints):
        """The pinned alias, the instance's database or the app's home, among the aliases holding the app."""
        aliases = self.holders.get(app_label_of(model))
        if not aliases:
            # Unconfigured app: fall through to the empty `default`, which
            # raises ImproperlyConfigured; the `console.E001` check names it.
            return None
        pinned = pinned_database()
        if pinned in aliases:
            return pinned
        instance = hints.get("instance")
        if instance is not None:
            home = primary_of(instance._state.db)  # a row read from a replica is written to its primary
            if home in aliases:
                return home
        return aliases[0]

    def db_for_read(self, model, **hints):
        """Where a write would go, or one of its replicas when the running view may read one (``pinning``)."""
        alias = self.db_for_write(model, **hints)
        return alias and read_database(alias)

    def allow_relation(self, obj1, obj2, **hints):
        """Relations only within one database (a replica counts as its primary): no cross-database joins."""
        return primary_of(obj1._state.db) == primary_of(obj2._state.db)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        """An app's tables exist exactly in the aliases configured to hold it."""
        return db in self.holders.get(app_label, ())
