"""The legacy order-entry tables, as ``inspectdb`` read them from MariaDB, fixed by hand where needed.

Generated with Django 5.2 against MariaDB 10.11, the production target, after
creating the shipped schema (``sql/schema.mysql.sql``) on an empty database::

    CONSOLE_DB_LEGACY='mysql://...' manage.py create_legacy_schema
    CONSOLE_DB_LEGACY='mysql://...' manage.py inspectdb --database legacy --include-views

Model, field and ``db_table`` names are inspectdb's and every model stays
``managed = False``: the SQL files own the schema, and ``tests/test_legacy.py``
re-runs inspectdb to prove that every table and column still has its field.
Fixed by hand, and why:

* ``TINYINT(1)`` flags (``ACTIVE``, ``ON_HOLD``, ``PAID``, ``DISCONTINUED``)
  came out as ``IntegerField``; they are ``BooleanField`` (same ``db_column``),
  so forms show a checkbox, the admin a yes/no filter, and values read as bools.
* ``INVOICE.CUSTNO`` came out as ``custno = IntegerField``: the database has no
  foreign-key constraint, so inspectdb cannot know it points at ``CUSTMAST``.
  It is ``customer = ForeignKey(Custmast, DO_NOTHING, db_constraint=False,
  db_column="CUSTNO")`` so the admin can show, filter, search and pick the
  customer (and queries can join); ``db_constraint=False`` records that the
  database enforces nothing, ``DO_NOTHING`` that deleting a customer must not
  cascade into a schema nobody here owns.
* ``PRODUCT_PRICE``: inspectdb wrote ``CompositePrimaryKey('PRODUCT_CODE',
  'REGION')`` with *column* names, which fails check models.E042; it takes the
  field names (Django ticket #37203, still present in 5.2.19).  Its admin page
  goes through ``admin_site.composite`` (Django's admin refuses composite keys).
* ``STOCK_MOVE`` has no primary key and no unique key at all; inspectdb cannot
  write a model Django accepts for it.  ``StockMove`` declares a
  ``CompositePrimaryKey`` over every column (see its docstring).
* ``V_OPEN_INVOICES`` (a view) had no primary key, so Django would have added an
  ``id`` column the view lacks; ``invno`` is its key (one row per invoice).
  inspectdb also gave its text columns ``db_collation='utf8mb4_general_ci'`` and
  the model ``db_table_comment = 'VIEW'``: artefacts of MariaDB reporting no table
  collation and the comment "VIEW" for views, MariaDB-only, dropped.
* Every ``NOT NULL ... DEFAULT`` column carries its default as ``default=``:
  Django writes every column on insert, so the database default never applies.
* Added ``__str__``, ``Meta.ordering`` and verbose names; dropped inspectdb's
  line comments.

The same models work on SQLite with ``sql/schema.sqlite.sql``, whose flags are
``BOOLEAN`` columns (inspectdb on SQLite reads them as ``BooleanField``).
"""

from decimal import Decimal

from django.db import models

from console.legacy.fields import SetField, UnsignedBigIntegerField, ZeroDateField, ZeroDateTimeField, validate_latin1


class Custmast(models.Model):
    """The customer master record."""

    custno = models.AutoField("customer no.", db_column="CUSTNO", primary_key=True)
    name = models.CharField(db_column="NAME", max_length=60)
    class_field = models.CharField("class", db_column="CLASS", max_length=1, default="C")
    email = models.CharField(db_column="EMAIL", max_length=100, blank=True, null=True)
    city = models.CharField(db_column="CITY", max_length=40, default="")
    country = models.CharField(db_column="COUNTRY", max_length=2, default="")
    credit_limit = models.DecimalField(db_column="CREDIT_LIMIT", max_digits=12, decimal_places=2, default=Decimal(0))
    active = models.BooleanField(db_column="ACTIVE", default=True)
    on_hold = models.BooleanField("on hold", db_column="ON_HOLD", default=False)
    opened = models.DateField(db_column="OPENED")
    lastchg = models.DateTimeField("last changed", db_column="LASTCHG", blank=True, null=True)

    class Meta:
        managed = False
        db_table = "CUSTMAST"
        # NAME is indexed and CUSTNO makes it total: no filesort on a large table.
        ordering = ["name", "custno"]
        verbose_name = "customer"

    def __str__(self):
        return f"{self.name} ({self.custno})"


class Invoice(models.Model):
    invno = models.AutoField("invoice no.", db_column="INVNO", primary_key=True)
    customer = models.ForeignKey(
        Custmast, models.DO_NOTHING, db_column="CUSTNO", db_constraint=False, related_name="invoices"
    )
    invdate = models.DateField("invoice date", db_column="INVDATE")
    duedate = models.DateField("due date", db_column="DUEDATE")
    amount = models.DecimalField(db_column="AMOUNT", max_digits=12, decimal_places=2)
    currency = models.CharField(db_column="CURRENCY", max_length=3, default="EUR")
    paid = models.BooleanField(db_column="PAID", default=False)
    paiddate = models.DateField("paid on", db_column="PAIDDATE", blank=True, null=True)
    remark = models.CharField(db_column="REMARK", max_length=200, blank=True, null=True)

    class Meta:
        managed = False
        db_table = "INVOICE"
        ordering = ["-invno"]

    def __str__(self):
        return f"Invoice {self.invno}"


class ProductPrice(models.Model):
    """A product's price in one region, keyed by (product code, region)."""

    pk = models.CompositePrimaryKey("product_code", "region")
    product_code = models.CharField(db_column="PRODUCT_CODE", max_length=20)
    region = models.CharField(db_column="REGION", max_length=10)
    price = models.DecimalField(db_column="PRICE", max_digits=12, decimal_places=2)
    currency = models.CharField(db_column="CURRENCY", max_length=3, default="EUR")
    from_field = models.DateField("valid from", db_column="FROM")
    discontinued = models.BooleanField(db_column="DISCONTINUED", default=False)

    class Meta:
        managed = False
        db_table = "PRODUCT_PRICE"
        ordering = ["product_code", "region"]

    def __str__(self):
        return f"{self.product_code} / {self.region}"


class StockMove(models.Model):
    """A stock movement as the old system logs it: a table without any primary or unique key.

    Django needs a primary key, and no column (nor set of columns) is one: the
    log may hold fully identical rows.  The ``CompositePrimaryKey`` over every
    column is therefore not a promise that rows are unique; it gives the list a
    total order (two rows that tie are equal in every column, so whichever of
    them a page shows, no page skips or repeats one) and makes the admin treat
    the table as read-only (``admin_site.composite.KeylessAdminMixin``): a key
    that may name two rows must never reach an UPDATE or DELETE.  Never save or
    delete through this model.
    """

    pk = models.CompositePrimaryKey("moved_at", "product_code", "quantity", "username")
    moved_at = models.DateTimeField("moved at", db_column="MOVED_AT")
    product_code = models.CharField("product code", db_column="PRODUCT_CODE", max_length=20)
    quantity = models.IntegerField(db_column="QUANTITY")
    username = models.CharField("user", db_column="USERNAME", max_length=30)

    class Meta:
        managed = False
        db_table = "STOCK_MOVE"
        ordering = ["-moved_at", "product_code", "quantity", "username"]
        verbose_name = "stock movement"

    def __str__(self):
        return f"{self.moved_at:%Y-%m-%d %H:%M} {self.product_code} {self.quantity:+d} ({self.username})"


class VOpenInvoices(models.Model):
    """Unpaid invoices with their customer's name: a read-only view."""

    invno = models.IntegerField("invoice no.", db_column="INVNO", primary_key=True)
    custno = models.IntegerField("customer no.", db_column="CUSTNO")
    custname = models.CharField("customer name", db_column="CUSTNAME", max_length=60)
    invdate = models.DateField("invoice date", db_column="INVDATE")
    duedate = models.DateField("due date", db_column="DUEDATE")
    amount = models.DecimalField(db_column="AMOUNT", max_digits=12, decimal_places=2)
    currency = models.CharField(db_column="CURRENCY", max_length=3)

    class Meta:
        managed = False  # Created from a view. Don't remove.
        db_table = "V_OPEN_INVOICES"
        ordering = ["duedate", "invno"]
        verbose_name = "open invoice"

    def __str__(self):
        return f"Invoice {self.invno} ({self.custname})"


class Itemmast(models.Model):
    """An item of the old system's item master: a latin1 table of MySQL-only types (``console/legacy/fields.py``).

    Fixed by hand after inspectdb, and why: ``STATUS`` (an ENUM, inspectdb:
    CharField) has its members as ``choices``; ``FEATURES`` (a SET, inspectdb:
    CharField) is a ``SetField`` with its members; ``TAXABLE`` is a
    ``BooleanField`` as above; ``SERIAL`` (BIGINT UNSIGNED, inspectdb:
    PositiveBigIntegerField) is an ``UnsignedBigIntegerField``, whose range is the
    column's and not Django's signed one; ``CREATED``/``LASTSOLD`` are
    zero-date fields, empty for ``0000-00-00``; the text of this latin1 table
    is checked to be Latin-1.  ``UNIT PRICE`` and ``ORDER`` are inspectdb's
    ``unit_price`` and ``order`` with their ``db_column``.
    """

    STATUSES = [("active", "active"), ("discontinued", "discontinued"), ("blocked", "blocked")]

    itemno = models.AutoField("item no.", db_column="ITEMNO", primary_key=True)
    descr = models.CharField("description", db_column="DESCR", max_length=60, validators=[validate_latin1])
    status = models.CharField(db_column="STATUS", max_length=12, choices=STATUSES, default="active")
    features = SetField(db_column="FEATURES", members=["new", "sale", "fragile", "bulky"])
    taxable = models.BooleanField(db_column="TAXABLE", default=True)
    serial = UnsignedBigIntegerField("serial no.", db_column="SERIAL", default=0)
    unit_price = models.DecimalField(
        "unit price", db_column="UNIT PRICE", max_digits=12, decimal_places=2, default=Decimal(0)
    )
    order = models.IntegerField("sort order", db_column="ORDER", default=0)
    created = ZeroDateField(db_column="CREATED", blank=True, null=True)
    lastsold = ZeroDateTimeField("last sold", db_column="LASTSOLD", blank=True, null=True)

    class Meta:
        managed = False
        db_table = "ITEMMAST"
        ordering = ["itemno"]
        verbose_name = "item"

    def __str__(self):
        return f"{self.descr} ({self.itemno})"
