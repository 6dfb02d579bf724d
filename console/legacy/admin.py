"""The legacy panel: customers, invoices and prices editable, stock movements and open invoices read-only.

``PRODUCT_PRICE`` has a composite primary key and ``STOCK_MOVE`` none at all:
their pages go through ``admin_site.composite``.
"""

import admin_site
from admin_site.changelists.filters import RelatedIdFieldListFilter
from admin_site.composite import CompositeKeyAdminMixin, KeylessAdminMixin
from admin_site.options import DatabaseModelAdmin, ReadOnlyAdminMixin
from console.legacy.fields import is_latin1
from console.legacy.models import Custmast, Invoice, Itemmast, ProductPrice, StockMove, VOpenInvoices


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


@admin_site.register(ProductPrice)
class ProductPriceAdmin(CompositeKeyAdminMixin, DatabaseModelAdmin):
    """Keyed by (product code, region): both are set when a price is added and fixed afterwards."""

    list_display = ["product_code", "region", "price", "currency", "from_field", "discontinued"]
    list_filter = ["region", "currency", "discontinued"]
    search_fields = ["product_code"]
    ordering = ["product_code", "region"]
    list_per_page = 50


@admin_site.register(StockMove)
class StockMoveAdmin(KeylessAdminMixin, DatabaseModelAdmin):
    """A log without a key: listed, filtered and exported, never edited."""

    list_display = ["moved_at", "product_code", "quantity", "username"]
    list_filter = ["username", "moved_at"]
    search_fields = ["product_code"]
    date_hierarchy = "moved_at"
    list_per_page = 50


@admin_site.register(VOpenInvoices)
class VOpenInvoicesAdmin(ReadOnlyAdminMixin, DatabaseModelAdmin):
    """A view: nothing to add, change or delete, only to read."""

    list_display = ["invno", "custno", "custname", "invdate", "duedate", "amount", "currency"]
    list_filter = ["currency"]
    search_fields = ["=invno", "=custno", "custname"]
    date_hierarchy = "duedate"
    list_per_page = 50


@admin_site.register(Itemmast)
class ItemmastAdmin(DatabaseModelAdmin):
    """MySQL-only types: ENUM as a select, SET as checkboxes, zero dates shown empty and kept (``legacy.fields``)."""

    #: Without "sort order" (on the change form), so the list fits a 1280 px window.
    list_display = [
        "itemno",
        "descr",
        "status",
        "features",
        "taxable",
        "serial",
        "unit_price",
        "created",
        "lastsold",
    ]
    list_display_links = ["itemno", "descr"]
    list_filter = ["status", "taxable"]
    search_fields = ["=itemno", "descr"]
    readonly_fields = ["itemno"]
    list_per_page = 50

    # ITEMMAST is a latin1 table: MySQL refuses to compare its text with a character latin1 has not
    # ("Illegal mix of collations"), a 500 for a search or filter that could match no row anyway.

    def get_search_results(self, request, queryset, search_term):
        """A term with a character no column here can hold finds nothing (every word must match)."""
        if not is_latin1(search_term):
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def lookup_allowed(self, lookup, value, request=None):
        """A filter value with a character no column here can hold is refused (400), not sent to MySQL."""
        if isinstance(value, str) and not is_latin1(value):
            return False
        return super().lookup_allowed(lookup, value, request)
