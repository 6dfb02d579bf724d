"""The customers panel: customers with addresses and tags, orders with lines, proxies."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

import admin_site
from admin_site.changelists.filters import ColumnValuesFieldListFilter, RelatedIdFieldListFilter
from admin_site.options import DatabaseModelAdmin, DatabaseTabularInline
from console.customers.models import (
    ActiveCustomer,
    Address,
    BusinessCustomer,
    Customer,
    Order,
    OrderLine,
    Tag,
    VipCustomer,
)


class AddressInline(DatabaseTabularInline):
    model = Address
    extra = 0


class OrderInline(DatabaseTabularInline):
    model = Order
    extra = 0
    fields = ["number", "status", "placed_on", "total"]
    readonly_fields = ["total"]
    show_change_link = True


@admin_site.register(Customer)
class CustomerAdmin(DatabaseModelAdmin):
    list_display = ["name", "email", "country", "status", "tier", "order_count", "lifetime_value", "contact_count"]
    # Choices fields list their choices; country and city values come from their indexes.
    list_filter = ["status", "tier", "country", "tags", ("addresses__city", admin.AllValuesFieldListFilter)]
    search_fields = ["name", "email"]
    # On MySQL a FULLTEXT index on ``search_words`` (name and email, "_" read as a space) answers the search.
    search_fulltext_fields = ["name", "email"]
    search_fulltext_columns = ["search_words"]
    date_hierarchy = "created_at"
    filter_horizontal = ["tags"]
    readonly_fields = ["reference", "order_count", "lifetime_value", "contact_count", "last_contacted_at", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "email", "phone", "country"]}),
        ("Relationship", {"fields": ["status", "tier", "tags", "notes"]}),
        (
            "Figures",
            {
                "classes": ["collapse"],
                "fields": [
                    "reference",
                    "order_count",
                    "lifetime_value",
                    "contact_count",
                    "last_contacted_at",
                    "created_at",
                ],
            },
        ),
    ]
    inlines = [AddressInline, OrderInline]
    actions = ["record_contact"]
    list_per_page = 50

    def get_urls(self):
        card = path(
            "<path:object_id>/card/",
            self.admin_site.admin_view(self.card_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_card",
        )
        return [card, *super().get_urls()]

    def card_view(self, request, object_id):
        """A printable one-page summary: the target of "View on site"."""
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("No such customer in this database.")
        if not self.has_view_or_change_permission(request, customer):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": str(customer),
            "customer": customer,
            "addresses": customer.addresses.all(),
            "orders": customer.orders.all()[:20],
            "opts": self.opts,
        }
        return TemplateResponse(request, "customers/card.html", context)

    @admin.action(description="Record a contact with the selected customers", permissions=["change"])
    def record_contact(self, request, queryset):
        """F() increments in the database: two staff recording at once both count."""
        updated = queryset.update(contact_count=F("contact_count") + 1, last_contacted_at=timezone.now())
        self.message_user(request, f"Recorded a contact with {updated} customer(s).", messages.SUCCESS)


@admin_site.register(ActiveCustomer)
class ActiveCustomerAdmin(CustomerAdmin):
    list_filter = ["tier", ("country", ColumnValuesFieldListFilter)]


@admin_site.register(VipCustomer)
class VipCustomerAdmin(CustomerAdmin):
    list_display = ["name", "email", "lifetime_value", "order_count", "country", "status"]
    list_filter = ["status", ("country", ColumnValuesFieldListFilter)]


@admin_site.register(BusinessCustomer)
class BusinessCustomerAdmin(CustomerAdmin):
    #: One column for the company and its contact: they are mostly the same name (the demo's always are).
    list_display = ["company", "email", "vat_number", "employees", "country", "status"]
    search_fields = ["company_name", "name", "email", "vat_number"]
    fieldsets = [("Company", {"fields": ["company_name", "vat_number", "employees"]}), *CustomerAdmin.fieldsets]

    @admin.display(description="company", ordering="company_name")
    def company(self, obj):
        """The company name, and under it the customer's name when that differs."""
        if obj.name and obj.name != obj.company_name:
            return format_html("{}<br><small>{}</small>", obj.company_name, obj.name)
        return obj.company_name


class OrderLineInline(DatabaseTabularInline):
    model = OrderLine
    extra = 1


@admin_site.register(Order)
class OrderAdmin(DatabaseModelAdmin):
    list_display = ["number", "customer", "status", "placed_on", "total"]
    list_filter = ["status", ("customer", RelatedIdFieldListFilter), "customer__country"]
    list_select_related = ["customer"]
    search_fields = ["number", "customer__email"]
    date_hierarchy = "placed_on"
    raw_id_fields = ["customer"]
    readonly_fields = ["total"]
    inlines = [OrderLineInline]
    import_use_bulk = False  # saving an order updates its customer's totals (signals)


@admin_site.register(Address)
class AddressAdmin(DatabaseModelAdmin):
    list_display = ["line1", "city", "postcode", "country", "kind", "customer"]
    list_filter = ["kind", "country", ("customer", RelatedIdFieldListFilter)]
    list_select_related = ["customer"]
    search_fields = ["line1", "city", "postcode"]
    autocomplete_fields = ["customer"]
    list_editable = ["kind"]


@admin_site.register(Tag)
class TagAdmin(DatabaseModelAdmin):
    list_display = ["id", "name", "created_at"]
    list_editable = ["name"]
    search_fields = ["name"]
