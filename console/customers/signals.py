"""Keep customer data consistent however it is written (admin, import, shell).

Handlers write with the ``using`` the signal carries: the same model lives
in several databases, and the router alone cannot know which one is meant.
"""

from decimal import Decimal

from django.db.models import Count, DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from console.customers.models import Customer, Order, OrderLine, normalise_customer

ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=14, decimal_places=2))


@receiver(pre_save)
def normalise_customer_fields(sender, instance, **kwargs):
    """Emails are unique case-insensitively in practice: store them lower-cased."""
    if isinstance(instance, Customer):
        normalise_customer(instance)


def refresh_order_total(order_id, using):
    """Order total = sum of its lines, computed by the database in one UPDATE."""
    amount = (
        OrderLine.objects.using(using)
        .filter(order=OuterRef("pk"))
        .values("order")
        .annotate(amount=Sum(F("quantity") * F("unit_price")))
        .values("amount")
    )
    Order.objects.using(using).filter(pk=order_id).update(total=Coalesce(Subquery(amount), ZERO))


def refresh_customer_totals(customer_id, using):
    """Recompute order count and lifetime value in one UPDATE (no read-modify-write race)."""
    orders = (
        Order.objects.using(using).filter(~Q(status=Order.Status.CANCELLED), customer=OuterRef("pk")).values("customer")
    )
    Customer.objects.using(using).filter(pk=customer_id).update(
        order_count=Coalesce(Subquery(orders.annotate(n=Count("pk")).values("n")), 0),
        lifetime_value=Coalesce(Subquery(orders.annotate(v=Sum("total")).values("v")), ZERO),
    )


@receiver(post_save, sender=OrderLine)
@receiver(post_delete, sender=OrderLine)
def order_line_changed(sender, instance, using, **kwargs):
    refresh_order_total(instance.order_id, using)
    customer_id = Order.objects.using(using).filter(pk=instance.order_id).values_list("customer_id", flat=True).first()
    if customer_id is not None:  # None while the order itself is being deleted
        refresh_customer_totals(customer_id, using)


@receiver(post_save, sender=Order)
@receiver(post_delete, sender=Order)
def order_changed(sender, instance, using, **kwargs):
    refresh_customer_totals(instance.customer_id, using)
