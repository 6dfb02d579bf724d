"""Second factor (django-otp): a code after the password on panels that require it, and enrolment.

A panel whose ``CONSOLE_DATABASES`` entry has ``"require_otp": True`` admits a session only once it
has passed a code (``DatabaseAdminSite.admin_view``).  The password step stays the panel's own login,
throttled by axes; this step comes after it.  A user with no authenticator yet is led to enrol one:
a QR code and its secret, one code to confirm it, then backup codes shown once.

Codes are checked here rather than with ``django_otp.verify_token``/``match_token``: those open
``transaction.atomic()`` on the ``default`` database, which the console leaves empty.  Here the device
row is locked (``SELECT ... FOR UPDATE``) in a transaction on the devices' own database, so two server
processes cannot both accept one code.  A TOTP code is accepted once (the device's ``last_t``) and
only within one step of now (``tolerance``); wrong codes wait 1, 2, 4, 8... seconds per device
(django-otp's throttling, ``OTP_*_THROTTLE_FACTOR``).  A verified session stays verified in every
panel until it ends.
"""

import base64
from urllib.parse import urlencode

import django_otp
import segno
from django import forms
from django.db import router, transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

#: Backup codes handed out with each new authenticator; each works once.
BACKUP_CODES = 10
WRONG_CODE = "That code is not valid. Enter the current code from your authenticator app, or a backup code."
THROTTLED = "Too many wrong codes. Wait %(seconds)s seconds, then enter a new code."


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
    )

    def clean_code(self):
        """Spaces and dashes dropped, letters lower-cased: ``123 456`` and ``ABCD-EFGH`` are accepted as typed."""
        return "".join(self.cleaned_data["code"].split()).replace("-", "").lower()


def is_verified(user):
    """Whether this session passed a code (``OTPMiddleware`` sets ``user.is_verified``)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def has_authenticator(user):
    """Whether ``user`` has a confirmed authenticator app; without one they are led to enrol."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def needs_code(site, request):
    """Whether ``request`` must pass a code before ``site`` serves it."""
    return site.require_otp and request.user.is_authenticated and not is_verified(request.user)


def step_url(site, request, next_url):
    """Where an unverified user goes: the code page, or enrolment without an authenticator."""
    name = "otp_verify" if has_authenticator(request.user) else "otp_enrol"
    return f"{reverse(f'admin:{name}', current_app=site.name)}?{urlencode({'next': next_url})}"


def redirect_to_step(site, request):
    return HttpResponseRedirect(step_url(site, request, request.get_full_path()))


def safe_next(site, request):
    """The page to go on to: ``next`` when it stays on this host, else the panel's index."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return next_url
    return reverse("admin:index", current_app=site.name)


def check_code(user, code, device=None):
    """The device that accepts ``code`` (its row locked while it is used up), and why not if none.

    Six digits are a TOTP code; anything else is a backup code.  Returns ``(device, None)``,
    ``(None, seconds_to_wait)`` when throttled, or ``(None, None)`` for a wrong code.
    """
    if device is not None:
        model = type(device)
    else:
        model = TOTPDevice if code.isdigit() and len(code) == 6 else StaticDevice
    alias = router.db_for_write(model)
    with transaction.atomic(using=alias):
        devices = model.objects.using(alias).select_for_update().filter(user=user)
        devices = devices.filter(pk=device.pk) if device is not None else devices.filter(confirmed=True)
        for candidate in devices.order_by("pk"):
            allowed, why = candidate.verify_is_allowed()
            if not allowed:
                wait = (why or {}).get("locked_until")
                return None, max(1, int((wait - timezone.now()).total_seconds() + 0.999)) if wait else 1
            if candidate.verify_token(code):
                return candidate, None
    return None, None


def mark_verified(request, device):
    """This session passed ``device``'s code: a new session key, and the device remembered in it."""
    request.session.cycle_key()
    django_otp.login(request, device)


def code_error(form, wait):
    if wait:
        form.add_error("code", THROTTLED % {"seconds": wait})
    else:
        form.add_error("code", WRONG_CODE)


def render(site, request, template, context, status=200):
    context = {**site.each_context(request), "next": safe_next(site, request), **context}
    return TemplateResponse(request, template, context, status=status)


def verify_view(site, request):
    """Ask for a code (or a backup code) from a logged-in user who has an authenticator."""
    if is_verified(request.user):
        return HttpResponseRedirect(safe_next(site, request))
    if not has_authenticator(request.user):
        return HttpResponseRedirect(step_url(site, request, safe_next(site, request)))
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        device, wait = check_code(request.user, form.cleaned_data["code"])
        if device is not None:
            mark_verified(request, device)
            return HttpResponseRedirect(safe_next(site, request))
        code_error(form, wait)
        status = 429 if wait else 200
    context = {"title": "Enter your code", "subtitle": None, "form": form}
    return render(site, request, "admin_site/otp_verify.html", context, status)


def enrol_view(site, request):
    """Set up an authenticator app: QR code and secret, one code to confirm, then backup codes once.

    Only the logged-in user enrols, and only while they have no confirmed authenticator; to replace
    one, an administrator first deletes the user's devices (users panel, "OTP TOTP › TOTP devices").
    """
    if has_authenticator(request.user):
        return HttpResponseRedirect(step_url(site, request, safe_next(site, request)))
    device = pending_device(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        confirmed, wait = check_code(request.user, form.cleaned_data["code"], device=device)
        if confirmed is not None:
            codes = confirm(confirmed)
            mark_verified(request, confirmed)
            context = {"title": "Your backup codes", "subtitle": None, "codes": codes}
            return render(site, request, "admin_site/otp_backup_codes.html", context)
        code_error(form, wait)
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "title": "Set up your authenticator app",
        "subtitle": None,
        "form": form,
        "qr_svg": mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=5, omitsize=False)),  # noqa: S308 - segno's own SVG
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    }
    return render(site, request, "admin_site/otp_enrol.html", context)


#: The session key naming this session's unconfirmed authenticator.
PENDING_SESSION_KEY = "console_otp_pending_device"


def pending_device(request):
    """This session's unconfirmed authenticator, made once: reloading the page keeps the same QR code.

    One per session, never shared: someone who logs in with the password and only looks at the
    enrolment page must not learn the secret the user will scan later.  Confirming one device
    deletes the user's others.
    """
    user, pk = request.user, request.session.get(PENDING_SESSION_KEY)
    device = TOTPDevice.objects.filter(user=user, confirmed=False, pk=pk).first() if isinstance(pk, int) else None
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
        request.session[PENDING_SESSION_KEY] = device.pk
    return device


def confirm(device):
    """Confirm ``device``, drop the user's other devices, and return new backup codes (shown once)."""
    alias = router.db_for_write(TOTPDevice)
    with transaction.atomic(using=alias):
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.using(alias).filter(user_id=device.user_id).exclude(pk=device.pk).delete()
        StaticDevice.objects.using(alias).filter(user_id=device.user_id).delete()
        backup = StaticDevice.objects.using(alias).create(user_id=device.user_id, name="Backup codes")
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
        StaticToken.objects.using(alias).bulk_create([StaticToken(device=backup, token=code) for code in codes])
    return codes
