"""Customer data: customers, addresses, orders, tags, business customers and proxies.

Lives in the ``customers`` alias (and any alias configured to hold a copy,
such as an archive).  Nothing here names a database: the router and the
panel decide, and signal handlers write where the signal says (``using``).
"""

import uuid
from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Concat, Replace
from django.urls import reverse


class Timestamped(models.Model):
    """Creation and last-change times, set by the database row's life, never typed in."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Tag(Timestamped):
    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Customer(Timestamped):
    class Status(models.TextChoices):
        LEAD = "lead", "Lead"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    class Tier(models.TextChoices):
        STANDARD = "standard", "Standard"
        SILVER = "silver", "Silver"
        GOLD = "gold", "Gold"
        VIP = "vip", "VIP"

    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True, help_text="Stored in lower case; two customers can never share an address.")
    phone = models.CharField(
        max_length=32,
        blank=True,
        validators=[RegexValidator(r"^\+?[0-9 ()-]{6,31}$", "Enter a phone number: digits, spaces, +, - and ().")],
    )
    country = models.CharField(
        max_length=2,
        db_index=True,
        validators=[RegexValidator(r"^[A-Za-z]{2}$", "Use the two-letter ISO 3166 code, e.g. DE.")],
        help_text="ISO 3166-1 alpha-2 code, e.g. DE, FR, US.",
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.LEAD, db_default=Status.LEAD)
    tier = models.CharField(max_length=16, choices=Tier, default=Tier.STANDARD, db_default=Tier.STANDARD)
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers")
    notes = models.TextField(blank=True)
    # Kept by signals and admin actions, never typed in.
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    lifetime_value = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0"), db_default=Decimal("0"), editable=False
    )
    contact_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    last_contacted_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Name and email as words for the FULLTEXT search (MySQL): InnoDB reads "_" as a letter, so it becomes a space.
    search_words = models.GeneratedField(
        expression=Replace(Concat("name", models.Value(" "), "email"), models.Value("_"), models.Value(" ")),
        output_field=models.CharField(max_length=455),
        db_persist=True,
    )

    class Meta:
        ordering = ["-id"]
        # Every default ordering and list filter of the customer admins has an index
        # (``created_at`` and ``country`` have theirs): a filtered page reads one index range.
        # Name and email also have a FULLTEXT index on MySQL (migration 0002) for search.
        # Ascending on purpose: InnoDB appends the pk and scans backwards for "newest first",
        # and MariaDB answers MIN/MAX (the date hierarchy) from an ascending index only.
        indexes = [
            models.Index(fields=["status", "-id"]),
            models.Index(fields=["tier", "-id"]),
            models.Index(fields=["status", "created_at"], name="customer_status_created_idx"),
            models.Index(fields=["tier", "lifetime_value"], name="customer_tier_value_idx"),
        ]

    def __str__(self):
        return f"{self.name} <{self.email}>"

    def get_absolute_url(self):
        """The customer's card in the panel of the database this row came from."""
        return reverse("admin:customers_customer_card", args=[self.pk], current_app=self._state.db)

    def clean(self):
        # Normalise before validate_unique runs, so "Ann@X.com" meets "ann@x.com".
        normalise_customer(self)


def normalise_customer(customer):
    """Lower-case the email and upper-case the country; used by clean() and pre_save."""
    if customer.email:
        customer.email = customer.email.strip().lower()
    if customer.country:
        customer.country = customer.country.strip().upper()


class FilteredManager(models.Manager):
    """Sees only the rows matching ``filters``: what a proxy model stands for."""

    def __init__(self, **filters):
        super().__init__()
        self.filters = filters

    def get_queryset(self):
        return super().get_queryset().filter(**self.filters)


class ActiveCustomer(Customer):
    """Only active customers, newest first."""

    objects = FilteredManager(status=Customer.Status.ACTIVE)

    class Meta:
        proxy = True
        ordering = ["-created_at", "-id"]
        verbose_name = "active customer"


class VipCustomer(Customer):
    """Only VIP customers, most valuable first."""

    objects = FilteredManager(tier=Customer.Tier.VIP)

    class Meta:
        proxy = True
        ordering = ["-lifetime_value", "-id"]
        verbose_name = "VIP customer"


class BusinessCustomer(Customer):
    """A customer that is a company (multi-table child of Customer)."""

    company_name = models.CharField(max_length=200)
    vat_number = models.CharField(
        max_length=20,
        unique=True,
        null=True,
        blank=True,
        validators=[
            RegexValidator(r"^[A-Z]{2}[0-9A-Z]{2,18}$", "A VAT number starts with the country code, e.g. DE123456789.")
        ],
    )
    employees = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "business customer"


class Address(Timestamped):
    class Kind(models.TextChoices):
        BILLING = "billing", "Billing"
        SHIPPING = "shipping", "Shipping"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    kind = models.CharField(max_length=16, choices=Kind, default=Kind.BILLING)
    line1 = models.CharField("address line 1", max_length=200)
    line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100)
    postcode = models.CharField(max_length=16)
    country = models.CharField(max_length=2, validators=[RegexValidator(r"^[A-Z]{2}$", "Use the two-letter ISO code.")])

    class Meta:
        verbose_name_plural = "addresses"
        # Ends with the pk, so Django adds no "-pk" of its own and one index serves it.
        ordering = ["customer_id", "kind", "id"]
        indexes = [
            models.Index(fields=["customer", "kind", "id"], name="address_customer_kind_idx"),
            # The city filter's values, and its customers (a filter across the relation) from the index alone.
            models.Index(fields=["city", "customer"], name="address_city_customer_idx"),
            models.Index(fields=["country"], name="address_country_idx"),
        ]

    def __str__(self):
        return f"{self.line1}, {self.postcode} {self.city} ({self.country})"


class Order(Timestamped):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    # PROTECT: a customer with orders cannot be deleted by accident.
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=20, unique=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.OPEN, db_default=Status.OPEN)
    placed_on = models.DateField(db_index=True)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"), editable=False)

    class Meta:
        ordering = ["-placed_on", "-id"]
        indexes = [models.Index(fields=["status", "placed_on"], name="order_status_placed_idx")]

    def __str__(self):
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField("SKU", max_length=32)
    description = models.CharField(max_length=200, blank=True)
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["order", "sku"], name="orderline_unique_sku_per_order")]

    def __str__(self):
        return f"{self.quantity} × {self.sku}"

    @property
    def amount(self):
        return (self.quantity or 0) * (self.unit_price or Decimal("0"))
