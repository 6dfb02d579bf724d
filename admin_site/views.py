"""The console home: the panels this user may enter, what each database holds and what happened there lately.

Also the console's own login page, which is no panel's: it carries no panel
band and returns to the home.
"""

import datetime

from django.apps import apps
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.views import LoginView, redirect_to_login
from django.db import DatabaseError, connections
from django.shortcuts import render
from django.urls import reverse

from admin_site import activity, replicas, second_factor, table_sizes
from admin_site.changes import viewable_models
from admin_site.charts import daily_bars
from admin_site.drift import known_drift, unmanaged_models
from admin_site.outages import board, probe
from admin_site.permissions import can_enter
from admin_site.pinning import reading_replicas, using_database
from admin_site.sites import all_sites
from admin_site.status import database_status

#: Colours of the chart's two series.
CHANGES_COLOUR, IMPORTS_COLOUR = "#64748b", "#d97706"


def home(request):
    """The panels this user may enter, each with its database's health, tables and recent activity."""
    sites = all_sites()
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("console-login"))
    # The home names every database and its host: it asks for the second factor when any panel this user may
    # enter does, on the first such panel's page.
    for alias, site in sites.items():
        if can_enter(request.user, alias) and second_factor.needs_code(site, request):
            return second_factor.redirect_to_step(site, request)
    records_site = activity.transfer_site(sites, request.user)
    panels = []
    for alias, site in sites.items():
        if can_enter(request.user, alias):
            # Every query about this panel's data goes to its database (the pin), as on its own pages, or to
            # one of its healthy replicas that holds this user's writes.
            with using_database(alias), reading_replicas(request.session):
                panels.append(panel_summary(site, request, records_site))
    logout_site = next(iter(sites))
    context = {
        "panels": panels,
        "title": "Data Console",
        "site_header": "Data Console",
        "site_title": "Data Console",
        "has_permission": bool(panels),
        "logout_url": reverse(f"{logout_site}:logout"),
        "transfers_visible": records_site is not None,
        "days": activity.DAYS,
        "changes_colour": CHANGES_COLOUR,
        "imports_colour": IMPORTS_COLOUR,
    }
    return render(request, "admin_site/home.html", context, status=200 if panels else 403)


def panel_summary(site, request, records_site):
    """One panel's card on the home: status, biggest tables, last changes and transfers, drift, the chart."""
    alias = site.alias
    status = panel_status(alias)
    app_list = site.get_app_list(request)
    models = viewable_models(site, request)
    entries = activity.panel_entries(site, models)
    transfers = activity.panel_transfers(alias, models) if records_site is not None else None
    days = activity.window()
    series = [("changes", "change", CHANGES_COLOUR, activity.per_day(entries, "action_time", days))]
    if transfers is not None:
        imports = transfers.filter(kind="import")
        series.append(("imports", "import", IMPORTS_COLOUR, activity.per_day(imports, "started_at", days)))
    return {
        "site": site,
        "url": reverse(f"{alias}:index"),
        "changes_url": reverse(f"{alias}:changes") if models else None,
        "status": status,
        "replicas": replicas.states(alias),
        "tables": panel_tables(alias, app_list) if status["reachable"] else None,
        "drift": panel_drift(alias) if status["reachable"] else None,
        "changes": activity.last_changes(site, entries),
        "transfers": activity.last_transfers(records_site, transfers) if transfers is not None else None,
        "chart": daily_bars(f"chart-{alias}", f"Changes and imports per day on {site.title}", days, series),
        "series": series,
    }


def panel_tables(alias, app_list):
    """The biggest tables of models this user may view on the panel: ``{"rows": [...]}`` or ``{"error": ...}``.

    Each row is ``(table, rows, how, model entry of the app list)``; see ``admin_site.table_sizes``.
    """
    viewable = {
        entry["model"]._meta.db_table: entry
        for app in app_list
        for entry in app["models"]
        if not entry["model"]._meta.proxy
    }
    try:
        sizes = table_sizes.table_sizes(alias)
    except DatabaseError as exc:
        return {"error": str(exc)}
    return {"rows": table_sizes.biggest(sizes, viewable)}


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


class ConsoleLoginView(LoginView):
    """The console's login: a staff account's password (throttled by axes like every panel's), then the home.

    A panel that requires a second factor asks for it when the home is opened (``home``).
    """

    authentication_form = AdminAuthenticationForm
    template_name = "admin_site/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            title="Log in",
            site_header="Data Console",
            site_title="Data Console",
            app_path=self.request.get_full_path(),
            username=self.request.user.get_username(),
        )
        return context


console_login = ConsoleLoginView.as_view()
