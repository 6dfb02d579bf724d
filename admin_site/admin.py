"""The audit trail of imports and exports, read-only on the console's own panel."""

import admin_site
from admin_site.models import TransferRecord
from admin_site.options import DatabaseModelAdmin, ReadOnlyAdminMixin


@admin_site.register(TransferRecord)
class TransferRecordAdmin(ReadOnlyAdminMixin, DatabaseModelAdmin):
    list_display = ["started_at", "kind", "outcome", "database", "model", "username", "via", "file_name", "rows_total"]
    list_filter = ["kind", "outcome", "database", "via", "model"]
    search_fields = ["username", "model", "file_name"]
    date_hierarchy = "started_at"
    list_select_related = ["user"]
