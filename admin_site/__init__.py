"""Reusable machinery for one Django admin panel per database alias.

``register`` records ModelAdmin classes per model; ``sites.all_sites()`` builds
one ``DatabaseAdminSite`` per configured alias and registers on it every
recorded admin whose model's app that alias holds.
"""

from admin_site.registry import register

__all__ = ["register"]
