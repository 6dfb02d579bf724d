"""The audit trail of imports and exports, login lockouts and second-factor devices, on the console's own panel."""

from axes.models import AccessAttempt
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

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


@admin_site.register(AccessAttempt)
class AccessAttemptAdmin(DatabaseModelAdmin):
    """Login lockouts (django-axes): read-only; deleting a row clears that lockout."""

    list_display = ["username", "ip_address", "failures_since_start", "attempt_time", "path_info"]
    list_filter = ["attempt_time", "path_info"]
    search_fields = ["username", "ip_address"]
    date_hierarchy = "attempt_time"
    readonly_fields = [
        "username",
        "ip_address",
        "user_agent",
        "path_info",
        "failures_since_start",
        "attempt_time",
        "get_data",
        "post_data",
    ]
    exclude = ["http_accept"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Viewing is enough; the view permission or the change permission lets a user see the rows.
        return False


class DeviceAdmin(DatabaseModelAdmin):
    """Second-factor devices: listed without their secrets; deleting a user's devices makes them enrol again.

    Only the user enrols their own device (``admin_site.second_factor``), so nothing is added or changed here,
    and nothing is exported or imported: a device's secret key and backup codes never leave the database.
    """

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count"]
    list_filter = ["confirmed"]
    search_fields = ["user__username", "name"]
    list_select_related = ["user"]
    fields = readonly_fields = list_display

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        """A superuser's second factor is a superuser's to remove (as ``ConsoleUserAdmin`` guards the account)."""
        if obj is not None and obj.user.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def has_import_permission(self, request):
        return False

    def has_export_permission(self, request):
        return False


admin_site.register(TOTPDevice)(DeviceAdmin)
admin_site.register(StaticDevice)(DeviceAdmin)
