"""URLs of the changelist bench: the stock baseline admin next to the console's panels, and a trivial view.

``/stock/`` is a plain ``AdminSite`` with the customers model on Django's
documented multi-database ``ModelAdmin`` (``using`` on the queryset and the
writes) and the customers panel's list options as they were before the
big-table work; ``/bench/trivial/`` answers "ok" (the ceiling of the server);
everything else is the console (``console.urls``).  Used in-process by
``changelist_bench.py`` and as the ROOT_URLCONF of its HTTP server.
"""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path

import console.urls
from console.customers.models import Customer


class MultiDBModelAdmin(admin.ModelAdmin):
    """Django's documented multi-database pattern."""

    using = "customers"

    def get_queryset(self, request):
        return super().get_queryset(request).using(self.using)

    def save_model(self, request, obj, form, change):
        obj.save(using=self.using)

    def delete_model(self, request, obj):
        obj.delete(using=self.using)


class StockCustomerAdmin(MultiDBModelAdmin):
    list_display = ["name", "email", "country", "status", "tier", "order_count", "lifetime_value", "contact_count"]
    list_filter = ["status", "tier", "country", "tags", ("addresses__city", admin.AllValuesFieldListFilter)]
    search_fields = ["name", "email"]
    date_hierarchy = "created_at"
    list_per_page = 50


stock_site = admin.AdminSite(name="stock")
stock_site.register(Customer, StockCustomerAdmin)


def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("stock/", stock_site.urls),
    path("bench/trivial/", trivial),
    *console.urls.urlpatterns,
]
