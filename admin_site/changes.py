"""A panel's "Changes" page: every recorded change on its database, newest first, filterable.

The rows are Django's ``LogEntry`` rows tagged with the panel (``PanelLogEntry``),
limited to the models the viewer may see on this panel; each row's diff is cut
to the fields the viewer's ModelAdmin shows them (``admin_site.history``).
"""

import datetime

from django import forms
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.utils import timezone

from admin_site import history

#: Entries per page of the Changes list.
PER_PAGE = 50
#: Dates a filter may name; outside, a form error (the database cannot compare them, or Python cannot add a day).
EARLIEST, LATEST = datetime.date(1970, 1, 1), datetime.date(9998, 12, 31)


def viewable_models(site, request):
    """The models of this panel the user may view or change, from the site's own app list."""
    return [
        entry["model"]
        for app in site.get_app_list(request)
        for entry in app["models"]
        if entry["perms"].get("view") or entry["perms"].get("change")
    ]


class ChangesFilter(forms.Form):
    """The Changes list's GET parameters: a bad value is a form error, never a 500."""

    user = forms.CharField(required=False, max_length=150, label="User name")
    model = forms.ChoiceField(required=False, label="Model")
    since = forms.DateField(required=False, label="From (date)", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To (date)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, models):
        super().__init__(data)
        self.models = {f"{model._meta.app_label}.{model._meta.model_name}": model for model in models}
        choices = sorted((key, str(model._meta.verbose_name_plural).capitalize()) for key, model in self.models.items())
        self.fields["model"].choices = [("", "All models"), *choices]

    def clean(self):
        data = super().clean()
        for name in ("since", "until"):
            if data.get(name) and not EARLIEST <= data[name] <= LATEST:
                self.add_error(name, f"Give a date from {EARLIEST} to {LATEST}.")
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filter(self, queryset):
        """``queryset`` narrowed by the valid filters."""
        data = self.cleaned_data
        if data.get("user"):
            queryset = queryset.filter(user__username=data["user"])
        if data.get("model"):
            model = self.models[data["model"]]
            queryset = queryset.filter(content_type=ContentType.objects.get_for_model(model, for_concrete_model=False))
        if data.get("since"):
            queryset = queryset.filter(action_time__gte=_day_start(data["since"]))
        if data.get("until"):
            queryset = queryset.filter(action_time__lt=_day_start(data["until"] + datetime.timedelta(days=1)))
        return queryset


def _day_start(day):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def changes_view(site, request):
    """The panel's recorded changes, newest first, 50 a page; only models the user may view here."""
    models = viewable_models(site, request)
    if not models:
        raise PermissionDenied
    form = ChangesFilter(request.GET, models)
    types = ContentType.objects.get_for_models(*models, for_concrete_models=False)
    admins = {types[model].pk: site.get_model_admin(model) for model in models}
    entries = site.log_entries_for(LogEntry.objects.filter(content_type__in=list(types.values())))
    valid = form.is_valid()
    if valid:
        entries = form.filter(entries)
    entries = entries.select_related("user", "content_type", "panel", "panel__transfer").order_by("-action_time", "-id")
    page = Paginator(entries, PER_PAGE).get_page(request.GET.get("p"))
    fields = {}
    for entry in page:
        if entry.content_type_id not in fields:
            fields[entry.content_type_id] = history.visible_fields(admins[entry.content_type_id], request)
        history.prepare_for_viewer(entry, fields[entry.content_type_id])
    params = request.GET.copy()
    params.pop("p", None)
    context = {
        **site.each_context(request),
        "title": f"Changes on {site.title}",
        "subtitle": None,
        "form": form,
        "page": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "query": params.urlencode(),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin_site/changes.html", context, status=200 if valid else 400)
