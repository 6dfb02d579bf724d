"""What happened on a panel lately, for the console home: its last changes and transfers, and counts per day.

Changes are Django's ``LogEntry`` rows tagged with the panel (``PanelLogEntry``);
transfers are ``TransferRecord`` rows of the panel's database.  Both live on the
console's own database.  A viewer sees only entries of models they may view on
the panel (as on its Changes page, ``admin_site.changes``) and only what an entry
names, never its recorded values; transfer records only when they may view them
where they are kept (the panel that registers ``TransferRecord``).
"""

import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import urlencode

from admin_site.models import TransferRecord
from admin_site.permissions import can_enter

#: Entries listed per panel.
LAST = 5
#: Days the chart covers, today included.
DAYS = 30


def panel_entries(site, models):
    """The panel's log entries for ``models`` (those the viewer may see there)."""
    if not models:
        return LogEntry.objects.none()
    types = ContentType.objects.get_for_models(*models, for_concrete_models=False)
    return site.log_entries_for(LogEntry.objects.filter(content_type__in=list(types.values())))


def last_changes(site, entries):
    """The newest entries, each with a link: its object's page, or the panel's Changes page for its model."""
    changes = []
    for entry in entries.select_related("user", "content_type").order_by("-action_time", "-id")[:LAST]:
        ct = entry.content_type
        url = None
        if entry.object_id and not entry.is_deletion():
            try:
                url = reverse(f"{site.name}:{ct.app_label}_{ct.model}_change", args=(quote(entry.object_id),))
            except NoReverseMatch:
                url = None
        if url is None:
            url = reverse(f"{site.name}:changes") + "?" + urlencode({"model": f"{ct.app_label}.{ct.model}"})
        verb = "Added" if entry.is_addition() else "Deleted" if entry.is_deletion() else "Changed"
        changes.append({"entry": entry, "url": url, "verb": verb, "model": ct.name})
    return changes


def transfer_site(sites, user):
    """The panel where this user may view transfer records, or ``None``."""
    for alias, site in sites.items():
        if site.is_registered(TransferRecord) and can_enter(user, alias):
            if user.has_perm(f"{TransferRecord._meta.app_label}.view_transferrecord"):
                return site
    return None


def model_label(model):
    """How a transfer record names a model (``app_label.ModelName``)."""
    return f"{model._meta.app_label}.{model.__name__}"


def panel_transfers(alias, models):
    """The transfer records of the panel's database for ``models``."""
    return TransferRecord.objects.filter(database=alias, model__in=[model_label(model) for model in models])


def last_transfers(records_site, transfers):
    """The newest transfer records, each with a link to its page on ``records_site``."""
    name = f"{records_site.name}:admin_site_transferrecord_change"
    return [
        {"record": record, "url": reverse(name, args=(record.pk,))}
        for record in transfers.order_by("-started_at", "-id")[:LAST]
    ]


def window(days=DAYS):
    """The dates the chart covers, oldest first, ending today (the console's time zone)."""
    today = timezone.localdate()
    return [today - datetime.timedelta(days=back) for back in range(days - 1, -1, -1)]


def per_day(queryset, field, days):
    """``[count]`` of ``queryset``'s rows per day of ``days`` (by ``field``, a date-time), in one grouped query."""
    start = timezone.make_aware(datetime.datetime.combine(days[0], datetime.time.min))
    rows = (
        queryset.filter(**{f"{field}__gte": start})
        .annotate(day=TruncDate(field))
        .order_by()
        .values("day")
        .annotate(n=Count("pk"))
    )
    counts = {row["day"]: row["n"] for row in rows}
    return [counts.get(day, 0) for day in days]
