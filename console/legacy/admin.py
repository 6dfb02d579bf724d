"""The legacy panel: customers and invoices editable, open invoices read-only.

``PRODUCT_PRICE`` is missing on purpose: its primary key is composite and
``AdminSite.register()`` refuses such models.
"""

import admin_site
from admin_site.changelists.filters import RelatedIdFieldListFilter
from admin_site.options import DatabaseModelAdmin, ReadOnlyAdminMixin
from console.legacy.models import Custmast, Invoice, VOpenInvoices


@admin_site.register(Custmast)
class CustmastAdmin(DatabaseModelAdmin):
    list_display = ["custno", "name", "class_field", "city", "country", "credit_limit", "active", "on_hold", "opened"]
    list_display_links = ["custno", "name"]
    list_filter = ["active", "on_hold", "class_field", "country"]
    search_fields = ["=custno", "name", "email", "city"]
    date_hierarchy = "opened"
    readonly_fields = ["custno"]
    list_per_page = 50


@admin_site.register(Invoice)
class InvoiceAdmin(DatabaseModelAdmin):
    list_display = ["invno", "customer", "invdate", "duedate", "amount", "currency", "paid", "paiddate"]
    list_filter = ["paid", "currency", ("customer", RelatedIdFieldListFilter)]
    list_select_related = ["customer"]
    search_fields = ["=invno", "=customer__custno", "customer__name", "remark"]
    date_hierarchy = "invdate"
    # A select of every customer would be enormous; the raw-id popup searches and pages.
    raw_id_fields = ["customer"]
    readonly_fields = ["invno"]
    list_per_page = 50


@admin_site.register(VOpenInvoices)
class VOpenInvoicesAdmin(ReadOnlyAdminMixin, DatabaseModelAdmin):
    """A view: nothing to add, change or delete, only to read."""

    list_display = ["invno", "custno", "custname", "invdate", "duedate", "amount", "currency"]
    list_filter = ["currency"]
    search_fields = ["=invno", "=custno", "custname"]
    date_hierarchy = "duedate"
    list_per_page = 50
