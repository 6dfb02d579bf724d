"""Login throttling (django-axes): the username it counts by and the page a locked-out login gets.

Axes records each failed login in ``AccessAttempt`` on the ``users`` database (its app is routed
there, ``console.settings``), so every panel's login, and the console's own (``/login/``), counts
toward one total, in every server process.  See README, "Login throttling".
"""

import ipaddress

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import LoginView
from django.urls import reverse

from admin_site.sites import all_sites
from admin_site.views import ConsoleLoginView

#: The same words whether or not the account exists, and whatever its password was.
LOCKED_OUT_MESSAGE = (
    "Too many failed login attempts. Logins for this username from your address are "
    "locked for %(minutes)s minutes; try again later or ask an administrator to clear the lockout."
)


def username(request, credentials):
    """The username axes counts failures by: stripped and lower-cased, so "Admin" is "admin"."""
    value = (credentials or {}).get("username")
    if value is None:
        value = request.POST.get("username", "")
    return str(value).strip().lower()


def client_address(request):
    """``AXES_CLIENT_IP_CALLABLE``: the address failures are counted by.

    The connection's own address (``REMOTE_ADDR``), unless ``CONSOLE_TRUSTED_PROXIES`` names how many reverse
    proxies stand in front of the console: each appends the address it received the request from to
    ``X-Forwarded-For``, so the client is that many entries from the right.  Entries further left are the
    client's own to forge and are never read; a header too short or not an address leaves ``REMOTE_ADDR``.
    """
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.CONSOLE_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(hops) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote


def cool_off_minutes():
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60) or 1


class LockedOutForm(AdminAuthenticationForm):
    """The panel's login form, refused with the lockout message and without asking the backends."""

    def clean(self):
        raise forms.ValidationError(LOCKED_OUT_MESSAGE, code="locked_out", params={"minutes": cool_off_minutes()})


def lockout_response(request, original_response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: the panel's (or the console's) login page with the lockout message, status 429."""
    sites = all_sites()
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name == "console-login":
        response = ConsoleLoginView.as_view(authentication_form=LockedOutForm)(request)
        response.render()
        response.status_code = 429
        return response
    site = sites.get(match.namespace if match else None) or next(iter(sites.values()))
    context = {
        **site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": "",
    }
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=site.name)
    view = LoginView.as_view(
        authentication_form=LockedOutForm,
        extra_context=context,
        template_name=site.login_template or "admin/login.html",
    )
    response = view(request)
    response.render()
    response.status_code = 429
    return response
