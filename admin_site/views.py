"""The console home: the panels this user may enter, with each database's status."""

import datetime

from django.apps import apps
from django.contrib.auth.views import redirect_to_login
from django.db import connections
from django.shortcuts import render
from django.urls import reverse

from admin_site import second_factor
from admin_site.drift import known_drift, unmanaged_models
from admin_site.outages import board, probe
from admin_site.permissions import can_enter
from admin_site.sites import all_sites
from admin_site.status import database_status


def home(request):
    """The panels this user may enter, each with its database's status; a login page for anonymous users."""
    sites = all_sites()
    if not request.user.is_authenticated:
        first = next(iter(sites))
        return redirect_to_login(request.get_full_path(), reverse(f"{first}:login"))
    # The home names every database and its host: it asks for the second factor when any panel this user may
    # enter does, on the first such panel's page.
    for alias, site in sites.items():
        if can_enter(request.user, alias) and second_factor.needs_code(site, request):
            return second_factor.redirect_to_step(site, request)
    panels = [
        {"site": site, "url": reverse(f"{alias}:index"), "status": panel_status(alias)}
        for alias, site in sites.items()
        if can_enter(request.user, alias)
    ]
    for panel in panels:
        panel["drift"] = panel_drift(panel["site"].alias) if panel["status"]["reachable"] else None
    logout_site = next(iter(sites))
    context = {
        "panels": panels,
        "title": "Data Console",
        "site_header": "Data Console",
        "site_title": "Data Console",
        "has_permission": bool(panels),
        "logout_url": reverse(f"{logout_site}:logout"),
    }
    return render(request, "admin_site/home.html", context, status=200 if panels else 403)


def panel_drift(alias):
    """``[(table, messages)]`` of the panel's drifted tables; None when the panel has no unmanaged model."""
    if not unmanaged_models(alias):
        return None
    return sorted(
        (apps.get_model(label)._meta.db_table, [message for _kind, message in differences])
        for label, differences in known_drift(alias).items()
    )


def panel_status(alias):
    """``database_status()`` of a database that answers a quick probe; else why not, and since when.

    The probe (``admin_site.outages.probe``) waits about a second at most, so a
    database that hangs does not hold the home for the driver's time-out.
    """
    error = probe(alias)
    if error is None:
        return database_status(alias)
    connection = connections[alias]
    outage = board.outage(alias)
    return {
        "alias": alias,
        "vendor": connection.vendor,  # not display_name: on MySQL it asks the server (MariaDB or MySQL?)
        "name": str(connection.settings_dict.get("NAME") or ""),
        "host": connection.settings_dict.get("HOST") or "local",
        "reachable": False,
        "error": str(error),
        "down_since": datetime.datetime.fromtimestamp(outage.since, datetime.UTC) if outage else None,
    }
