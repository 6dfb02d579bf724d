"""``DatabaseAdminSite``: an admin panel bound to one database alias.

The site pins its alias around every view (``admin_site.pinning``), shows the
database on every page, admits only users with the panel's access permission
and keeps its own history.  ``all_sites()`` builds one per configured alias.
"""

from functools import cache, partial, update_wrapper

from django.conf import settings
from django.contrib import admin
from django.urls import path, reverse

from admin_site import changes, composite, drift, second_factor
from admin_site.models import PanelLogEntry
from admin_site.permissions import can_enter
from admin_site.pinning import pin_view
from admin_site.registry import registered


class DatabaseAdminSite(admin.AdminSite):
    """An AdminSite whose requests read and write only ``alias``."""

    index_template = "admin_site/index.html"
    app_index_template = "admin_site/app_index.html"
    #: Tests turn this off to prove the ModelAdmin bases bind every path alone.
    pin_requests = True
    #: Whether a session must pass a second factor (``admin_site.second_factor``) before this panel serves it.
    require_otp = False
    #: Django's left navigation takes ~300 px that the lists need at laptop width; the panel switcher and
    #: the breadcrumbs lead everywhere it did.
    enable_nav_sidebar = False

    def __init__(self, alias, title=None, colour="#417690", name=None, require_otp=False):
        super().__init__(name=name or alias)
        self.alias = alias
        self.require_otp = require_otp
        self.title = title or alias
        self.colour = colour
        self.site_header = f"Data Console · {self.title}"
        self.site_title = f"{self.title} ({alias})"
        self.index_title = f"{self.title} — database “{alias}”"
        # No "View site": the panel switcher (``each_context``, ``admin/base_site.html``) links to the console home.
        self.site_url = None

    def register(self, model_or_iterable, admin_class=None, **options):
        """Django's ``register``; a composite-key model through ``admin_site.composite`` (Django 5.2 refuses it)."""
        models = [model_or_iterable] if isinstance(model_or_iterable, type) else model_or_iterable
        for model in models:
            if not composite.register(self, model, admin_class, **options):
                super().register(model, admin_class, **options)

    def has_permission(self, request):
        """Active staff with this panel's access permission (``admin_site.permissions``)."""
        return can_enter(request.user, self.alias)

    def admin_view(self, view, cacheable=False, verified=True):
        """Django's login and CSRF wrapper around a view that runs with the alias pinned.

        With ``verified`` (every view but the second-factor steps themselves), a panel that requires a
        second factor first leads an unverified session to its code or enrolment page; logging out never waits.
        """
        if verified:
            view = self.second_factor_required(view)
        return super().admin_view(self.pin(view), cacheable)

    def second_factor_required(self, view):
        """``view``, preceded by the second-factor step when this panel requires one and the session lacks it."""

        def checked(request, *args, **kwargs):
            if second_factor.needs_code(self, request) and request.path != reverse(
                "admin:logout", current_app=self.name
            ):
                return second_factor.redirect_to_step(self, request)
            return view(request, *args, **kwargs)

        return update_wrapper(checked, view)

    def pin(self, view):
        """Run ``view`` with this site's alias pinned (see ``pinning.pin_view``)."""
        pinned = pin_view(view, self.alias)

        def maybe_pinned(request, *args, **kwargs):
            # Templates reverse "admin:..." URLs; resolve them within this panel.
            request.current_app = self.name
            return (pinned if self.pin_requests else view)(request, *args, **kwargs)

        return maybe_pinned

    def get_urls(self):
        """Django's URLs, the login page pinned too, and the panel's Changes list."""
        urls = super().get_urls()
        # login is the one view admin_view() does not wrap.
        urls.insert(0, path("login/", self.pin(self.login), name="login"))
        urls.insert(1, path("changes/", self.admin_view(self.changes_view), name="changes"))
        # The second-factor steps: for a logged-in user with the panel's permission, before any other page.
        steps = [
            path(
                "otp/verify/",
                self.admin_view(partial(second_factor.verify_view, self), verified=False),
                name="otp_verify",
            ),
            path(
                "otp/enrol/", self.admin_view(partial(second_factor.enrol_view, self), verified=False), name="otp_enrol"
            ),
        ]
        return steps + urls

    def changes_view(self, request):
        """The panel's recorded changes, filterable by user, model and date (``admin_site.changes``)."""
        return changes.changes_view(self, request)

    def each_context(self, request):
        """Django's page context plus the panel's alias, title and colour for the database band.

        On a page of a model whose table has drifted, ``schema_drift`` names the differences (the banner).
        """
        context = super().each_context(request)
        context.update(panel_alias=self.alias, panel_title=self.title, panel_colour=self.colour)
        context.update(navigation(self, request))
        context.update(schema_drift=drift.banner(request, self.alias))
        return context

    def get_log_entries(self, request):
        """Recent actions of this database only (LogEntry itself has no database column)."""
        return self.log_entries_for(super().get_log_entries(request))

    def log_entries_for(self, queryset):
        """Restrict a LogEntry queryset to this panel's database."""
        return queryset.filter(panel__database=self.alias)

    def tag_log_entries(self, entries):
        """Record that ``entries`` (LogEntry objects just written) belong to this database."""
        PanelLogEntry.objects.bulk_create(
            [PanelLogEntry(entry=entry, database=self.alias) for entry in entries if entry is not None]
        )


def navigation(current, request):
    """The console home's URL, the panels this user may enter (the switcher) and what the breadcrumbs begin with."""
    home = reverse("console-home")
    index = reverse("admin:index", current_app=current.name)
    user = getattr(request, "user", None)
    panels = [
        {"alias": alias, "title": site.title, "colour": site.colour, "url": reverse(f"{alias}:index")}
        for alias, site in all_sites().items()
        if user is not None and can_enter(user, alias)
    ]
    for panel in panels:
        panel["current"] = panel["alias"] == current.alias
    return {
        "console_url": home,
        "console_panels": panels,
        "panel_crumbs": {"console": home, "index": index, "title": current.title},
    }


def build_sites(panels):
    """One DatabaseAdminSite per alias, with every registered admin its apps need."""
    sites = {}
    for alias, panel in panels.items():
        site = DatabaseAdminSite(
            alias,
            title=panel.get("title"),
            colour=panel.get("colour", "#417690"),
            require_otp=bool(panel.get("require_otp", False)),
        )
        for model, admin_class in registered():
            if model._meta.concrete_model._meta.app_label in panel["apps"]:
                site.register(model, admin_class)
        sites[alias] = site
    return sites


@cache
def all_sites():
    """The console's panels, built once from ``settings.CONSOLE_DATABASES``."""
    return build_sites(settings.CONSOLE_DATABASES)
