"""The audit trail of imports and exports, read-only on the console's own panel."""

import admin_site
from admin_site.models import TransferRecord
from admin_site.options import DatabaseModelAdmin


@admin_site.register(TransferRecord)
class TransferRecordAdmin(DatabaseModelAdmin):
    list_display = ["started_at", "kind", "outcome", "database", "model", "username", "via", "file_name", "rows_total"]
    list_filter = ["kind", "outcome", "database", "via", "model"]
    search_fields = ["username", "model", "file_name"]
    date_hierarchy = "started_at"
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
