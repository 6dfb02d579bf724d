"""Drive every admin path of a panel the way staff would, watching every database.

``PanelWalker`` visits, for each registered model: the changelist, every list
filter choice (and a key in each filter that takes one), next/previous pages by
keyset cursor, search, date hierarchy drill-down, raw-id popups, autocomplete
JSON, the add and change forms, history, delete confirmation, the "delete
selected" confirmation, view on site, export and an import preview of the
exported file; ``walk_change_forms`` posts each change form back as a browser
would.  Rows are named in URLs as the admin names them (``composite.url_key``:
a composite key too); a model without row pages (a key-less table) is only listed.
"""

import types

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, include, path, reverse

from admin_site.changelists.filters import RelatedIdFieldListFilter
from admin_site.changelists.paginator import CURSOR_VAR, make_cursor
from admin_site.composite import key_text, url_key
from admin_site.concurrency import StaleSaveAdminMixin, StaleSaveInlineMixin, StateFieldsetsMixin
from admin_site.options import DatabaseAdminMixin, DatabaseBoundMixin, DatabaseInlineMixin
from admin_site.sites import DatabaseAdminSite, all_sites
from tests.conftest import seed_customers, seed_users
from tests.utils import admin_url, capture_queries, export_file, form_data


def seed_panel(panel):
    """Rows for every model the panel shows."""
    if panel == "users":
        return seed_users()
    if panel == "legacy":
        from console.legacy.demo import load

        return load(using="legacy", customers=12)
    return seed_customers(panel)


class PanelWalker:
    def __init__(self, client, site, site_views=True, strict=True):
        self.client = client
        self.site = site
        self.panel = site.alias
        self.site_views = site_views  # view-on-site is the site pin's job, not the bases'
        self.strict = strict
        self.leaks = []
        self.visited = 0
        self.urls = []  # (method, url): what the walk requested

    # -- requests ---------------------------------------------------------

    def request(self, method, url, data=None, **kwargs):
        with capture_queries() as log:
            response = getattr(self.client, method)(url, data, **kwargs)
        self.visited += 1
        self.urls.append((method.upper(), url))
        self.leaks += [(url, alias, sql) for alias, sql in log.leaks_from(self.panel)]
        if self.strict:
            assert response.status_code < 500, f"{method.upper()} {url} -> {response.status_code}"
        return response

    def get(self, url, data=None, **kwargs):
        response = self.request("get", url, data, **kwargs)
        if self.strict and not kwargs.get("follow"):
            assert response.status_code in (200, 302), f"GET {url} -> {response.status_code}"
        return response

    def post(self, url, data=None, **kwargs):
        return self.request("post", url, data, **kwargs)

    def assert_no_leaks(self):
        report = "\n".join(f"{url}\n    [{alias}] {sql[:300]}" for url, alias, sql in self.leaks[:20])
        assert not self.leaks, f"{len(self.leaks)} queries left the '{self.panel}' panel's database:\n{report}"

    # -- walks --------------------------------------------------------------

    def registered(self):
        return list(self.site._registry.items())

    def walk_reads(self):
        self.get(reverse(f"{self.site.name}:index"))
        for model, model_admin in self.registered():
            self.walk_changelist(model, model_admin)
            self.walk_import_export(model, model_admin)
            obj = model._default_manager.using(self.panel).first()
            if model_admin.has_add_permission(_request_for(self.client)):
                self.get(self.url(model, "add"))
            if obj is None:
                continue
            self.walk_delete_selected(model, model_admin, obj)
            change = self.row_url(model, "change", obj)
            if change is None:
                continue  # no page for one row (a table without a key): the list is all there is
            self.get(change)
            self.get(self.row_url(model, "history", obj))
            if model_admin.has_delete_permission(_request_for(self.client), obj):
                self.get(self.row_url(model, "delete", obj))
            if self.site_views and hasattr(obj, "get_absolute_url"):
                ct = ContentType.objects.db_manager("users").get_for_model(model, for_concrete_model=False)
                self.get(reverse(f"{self.site.name}:view_on_site", args=[ct.pk, obj.pk]))
            for field_name in model_admin.autocomplete_fields:
                query = {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": field_name,
                    "term": "a",
                }
                self.get(reverse(f"{self.site.name}:autocomplete"), query)

    def walk_delete_selected(self, model, model_admin, obj):
        """The "delete selected" confirmation page of one ticked row (asked for, not confirmed)."""
        if "delete_selected" not in model_admin.get_actions(_request_for(self.client)):
            return
        data = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [key_text(obj)], "index": 0}
        response = self.post(self.url(model, "changelist"), data)
        if self.strict:
            assert response.status_code == 200, f"no delete confirmation for {model.__name__}"

    def walk_import_export(self, model, model_admin):
        """The import form, the export form, a streamed CSV export read to its end and its import preview."""
        request = _request_for(self.client)
        if model_admin.has_import_permission(request):
            self.get(self.url(model, "import"))
        if model_admin.has_export_permission(request):
            self.get(self.url(model, "export"))
            with capture_queries() as log:
                response = export_file(self.client, self.site.name, model)
                body = b"".join(response.streaming_content) if response.streaming else b""
            self.visited += 1
            self.leaks += [(f"export {model.__name__}", alias, sql) for alias, sql in log.leaks_from(self.panel)]
            if self.strict:
                assert response.status_code == 200 and body, f"export of {model.__name__} did not stream a file"
            if body and model_admin.has_import_permission(request):
                self.walk_import_preview(model, body)

    def walk_import_preview(self, model, body):
        """Upload ``body`` (the CSV the export streamed) to the import form: its preview, nothing confirmed."""
        from admin_site.transfers.formats import IMPORT_FORMATS

        csv_format = [cls.__name__.lower() for cls in IMPORT_FORMATS].index("csv")
        upload = SimpleUploadedFile(f"{model._meta.model_name}.csv", body)
        response = self.post(
            self.url(model, "import"), {"format": str(csv_format), "resource": "0", "import_file": upload}
        )
        if self.strict:
            assert response.status_code == 200, f"no import preview for {model.__name__}"
        return response

    def walk_changelist(self, model, model_admin):
        changelist = self.url(model, "changelist")
        response = self.get(changelist)
        cl = response.context["cl"] if self.strict else None
        if cl is None:
            return
        for spec in cl.filter_specs:
            for choice in spec.choices(cl):
                self.get(changelist + choice["query_string"])
            if isinstance(spec, RelatedIdFieldListFilter):  # takes a key instead of listing choices
                related = spec.related_model._default_manager.using(self.panel).first()
                if related is not None:
                    self.get(changelist, {spec.lookup_kwarg: related.pk})
        if getattr(cl, "keys", None) and cl.result_list:
            # Next/previous links carry a keyset cursor instead of an offset; numbered links near a deep
            # page one that passes over a page's rows.
            for after in (True, False):
                for skip in (0, cl.list_per_page):
                    cursor = make_cursor(cl.keys, list(cl.result_list)[0], after, skip)
                    self.get(changelist, {"p": 2, CURSOR_VAR: cursor})
        if model_admin.search_fields:
            self.get(changelist, {"q": "a"})
        if model_admin.date_hierarchy:
            obj = cl.result_list[0] if cl.result_list else None
            if obj is not None:
                value = getattr(obj, model_admin.date_hierarchy)
                self.get(changelist, {f"{model_admin.date_hierarchy}__year": value.year})
                self.get(
                    changelist,
                    {
                        f"{model_admin.date_hierarchy}__year": value.year,
                        f"{model_admin.date_hierarchy}__month": value.month,
                    },
                )
        for field_name in model_admin.raw_id_fields:
            remote = model._meta.get_field(field_name).remote_field
            self.get(self.url(remote.model, "changelist"), {"_popup": "1", "_to_field": remote.field_name})

    def walk_change_forms(self):
        """Post every change form back unchanged: validation, inlines and M2M saving."""
        request = _request_for(self.client)
        for model, model_admin in self.registered():
            obj = model._default_manager.using(self.panel).first()
            if obj is None or not model_admin.has_change_permission(request, obj):
                continue
            url = self.row_url(model, "change", obj)
            page = self.get(url)
            data = form_data(page.content, f"{model._meta.model_name}_form")
            response = self.post(url, data)
            if self.strict:
                errors = response.context and response.context.get("errors")
                assert response.status_code == 302, f"POST {url} did not save: {errors}"

    def walk_list_editable(self):
        """Post every editable changelist back unchanged (list_editable validation and saving)."""
        for model, model_admin in self.registered():
            if not model_admin.list_editable or not model._default_manager.using(self.panel).exists():
                continue
            url = self.url(model, "changelist")
            data = form_data(self.get(url).content, "changelist-form")
            data.pop("action", None)
            response = self.post(url, {**data, "_save": "Save"})
            if self.strict:
                assert response.status_code == 302, f"POST {url} did not save"

    def url(self, model, view, *args):
        return admin_url(self.site.name, model, view, *args)

    def row_url(self, model, view, obj):
        """The URL of ``obj``'s ``view`` page, its key escaped as the admin's links escape it; None if there is none."""
        try:
            return self.url(model, view, url_key(obj))
        except NoReverseMatch:
            return None


def _request_for(client):
    """A request object carrying the logged-in user, for permission checks."""
    from django.contrib.auth import get_user

    request = types.SimpleNamespace(session=client.session)
    return types.SimpleNamespace(user=get_user(request), method="GET", GET={}, POST={})


# -- the request pin alone ---------------------------------------------------

BINDING_MIXINS = (DatabaseAdminMixin, DatabaseBoundMixin, DatabaseInlineMixin)
#: Console hooks that are not database binding: stock admins keep them (their forms refuse stale saves).
KEPT = (StaleSaveAdminMixin, StaleSaveInlineMixin, StateFieldsetsMixin)


def unbind(admin_class):
    """A subclass of ``admin_class`` whose database-binding overrides are all skipped.

    Each hook the binding mixins define is replaced by the implementation
    that comes after them in the MRO (Django's, or e.g. UserAdmin's).
    """
    mro = admin_class.__mro__
    rest = [cls for cls in mro if cls not in BINDING_MIXINS and (cls in KEPT or not _defined_by_console(cls))]
    attrs = {}
    for mixin in BINDING_MIXINS:
        if mixin not in mro:
            continue
        for name in vars(mixin):
            if name.startswith("__") or name == "alias":
                continue
            for cls in rest:
                if name in vars(cls):
                    attrs[name] = vars(cls)[name]
                    break
    inlines = [unbind(inline) for inline in getattr(admin_class, "inlines", [])]
    if inlines:
        attrs["inlines"] = inlines
    return type(f"Unbound{admin_class.__name__}", (admin_class,), attrs)


def _defined_by_console(cls):
    return cls.__module__.startswith(("console.", "admin_site."))


def unbound_site(alias):
    """A pinned site on ``alias`` serving stock (unbound) copies of its admins."""
    site = DatabaseAdminSite(alias, name=f"{alias}_stock")
    for model, model_admin in all_sites()[alias]._registry.items():
        site.register(model, unbind(type(model_admin)))
    urlconf = types.ModuleType(f"tests.urls_{alias}_stock")
    urlconf.urlpatterns = [path(f"{alias}-stock/", site.urls), path("", include("console.urls"))]
    return types.SimpleNamespace(site=site, urlconf=urlconf)
