"""The console home: the panels this user may enter, with each database's status."""

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.urls import reverse

from admin_site.permissions import can_enter
from admin_site.sites import all_sites
from admin_site.status import database_status


def home(request):
    sites = all_sites()
    if not request.user.is_authenticated:
        first = next(iter(sites))
        return redirect_to_login(request.get_full_path(), reverse(f"{first}:login"))
    panels = [
        {"site": site, "url": reverse(f"{alias}:index"), "status": database_status(alias)}
        for alias, site in sites.items()
        if can_enter(request.user, alias)
    ]
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
