"""Deterministic demo rows for the legacy tables: customers, their invoices, a price list and stock movements.

``load(using, customers=N)`` is what ``load_demo_data`` calls.  Rows are built
from ``random.Random(seed)`` against a fixed "today", so the same arguments give
the same data on every run and backend, and are written with ``bulk_create`` in
chunks inside one transaction: 100,000 customers (and a quarter of a million
invoices) take seconds, not minutes, and never sit in memory all at once.
"""

import datetime
import random
from contextlib import contextmanager
from decimal import Decimal
from itertools import islice

from django.db import connections, transaction
from django.db.models import Max

from console.legacy.models import Custmast, Invoice, Itemmast, ProductPrice, StockMove

SEED = 1987
#: Rows per INSERT, and per chunk built in Python.
BATCH_SIZE = 2000
#: The demo's "today": invoices are due, overdue or paid relative to it, not to the clock.
TODAY = datetime.date(2026, 6, 30)

SURNAMES = (
    "Becker Bauer Fischer Hoffmann Keller Klein Koch Lange Meyer Müller Neumann Richter Schmidt Schneider "
    "Schröder Schulz Wagner Weber Wolf Zimmermann Dubois Laurent Moreau Rossi Bianchi Ricci Jansen Visser "
    "Novak Horvat Smith Taylor Brown Evans Walsh Nilsson Lindqvist Kowalski Nowak Silva"
).split()
TRADES = (
    "Metallbau Elektro Holzbau Haustechnik Logistik Druckerei Baustoffe Sanitär Maschinenbau Feinkost "
    "Trading Tools Supplies Engineering Distribution Imports Handel Transporte"
).split()
LEGAL_FORMS = ("GmbH", "GmbH & Co. KG", "KG", "AG", "e.K.", "SARL", "S.r.l.", "B.V.", "Ltd", "s.r.o.", "AB")
CITIES = (
    ("Berlin", "DE"),
    ("Hamburg", "DE"),
    ("München", "DE"),
    ("Köln", "DE"),
    ("Stuttgart", "DE"),
    ("Wien", "AT"),
    ("Graz", "AT"),
    ("Zürich", "CH"),
    ("Basel", "CH"),
    ("Paris", "FR"),
    ("Lyon", "FR"),
    ("Milano", "IT"),
    ("Rotterdam", "NL"),
    ("Praha", "CZ"),
    ("Kraków", "PL"),
    ("Stockholm", "SE"),
    ("London", "GB"),
    ("Manchester", "GB"),
)
CURRENCIES = {"CH": "CHF", "CZ": "CZK", "PL": "PLN", "SE": "SEK", "GB": "GBP"}
CREDIT_LIMITS = [Decimal(limit) for limit in (0, 1000, 2500, 5000, 10000, 25000, 50000)]
REGIONS = {"DE": "EUR", "AT": "EUR", "CH": "CHF", "EU-WEST": "EUR", "UK": "GBP"}
PAYMENT_TERMS = (14, 30, 30, 30, 60)


def load(using, customers=200, seed=SEED):
    """Insert demo rows on the alias ``using``; do nothing if ``CUSTMAST`` already has rows.

    Returns the number of rows inserted per table (empty when nothing was done).
    """
    if Custmast.objects.using(using).exists():
        return {}
    rng = random.Random(seed)
    counts, accounts = {}, []
    with transaction.atomic(using=using):
        counts["CUSTMAST"] = _insert(using, Custmast, _customers(rng, customers, accounts))
        first_invno = (Invoice.objects.using(using).aggregate(last=Max("invno"))["last"] or 0) + 1
        counts["INVOICE"] = _insert(using, Invoice, _invoices(rng, accounts, first_invno))
        if not ProductPrice.objects.using(using).exists():
            counts["PRODUCT_PRICE"] = _insert(using, ProductPrice, _prices(rng, products=max(20, customers // 20)))
        if not StockMove.objects.using(using).exists():
            counts["STOCK_MOVE"] = _insert(using, StockMove, _stock_moves(products=max(20, customers // 20)))
        if not Itemmast.objects.using(using).exists():
            with zero_dates_allowed(connections[using]):
                counts["ITEMMAST"] = _insert(using, Itemmast, _items(connections[using]))
    return counts


def _insert(using, model, rows):
    """bulk_create ``rows`` chunk by chunk: bulk_create would otherwise list them all first."""
    rows, total = iter(rows), 0
    while chunk := list(islice(rows, BATCH_SIZE)):
        model.objects.using(using).bulk_create(chunk, batch_size=BATCH_SIZE)
        total += len(chunk)
    return total


def _customers(rng, count, accounts):
    """Customers numbered 1..count, so invoices can name them without reading them back.

    Appends (country, opening day) per customer to ``accounts``: invoices use both.
    """
    first_day = datetime.date(1995, 1, 1).toordinal()
    for custno in range(1, count + 1):
        surname = rng.choice(SURNAMES)
        city, country = rng.choice(CITIES)
        opened = datetime.date.fromordinal(rng.randrange(first_day, TODAY.toordinal() - 30))
        accounts.append((country, opened))
        lastchg = None
        if rng.random() < 0.7:
            lastchg = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
                seconds=rng.randrange(6 * 365 * 86400)
            )
        yield Custmast(
            custno=custno,
            name=f"{surname} {rng.choice(TRADES)} {rng.choice(LEGAL_FORMS)}",
            class_field=rng.choices("ABC", weights=(1, 3, 6))[0],
            email=f"info@{surname.lower()}{custno}.example" if rng.random() < 0.8 else None,
            city=city,
            country=country,
            credit_limit=rng.choice(CREDIT_LIMITS),
            active=rng.random() < 0.92,
            on_hold=rng.random() < 0.04,
            opened=opened,
            lastchg=lastchg,
        )


def _invoices(rng, accounts, invno):
    """Zero to five invoices per customer, none older than three years or the account."""
    three_years_ago = (TODAY - datetime.timedelta(days=3 * 365)).toordinal()
    for custno, (country, opened) in enumerate(accounts, start=1):
        currency = CURRENCIES.get(country, "EUR")
        first_day = max(three_years_ago, opened.toordinal())
        for _ in range(rng.randrange(6)):
            invdate = datetime.date.fromordinal(rng.randrange(first_day, TODAY.toordinal()))
            duedate = invdate + datetime.timedelta(days=rng.choice(PAYMENT_TERMS))
            paid = rng.random() < (0.97 if duedate < TODAY - datetime.timedelta(days=30) else 0.4)
            paiddate = min(TODAY, invdate + datetime.timedelta(days=rng.randrange(1, 75))) if paid else None
            yield Invoice(
                invno=invno,
                customer_id=custno,
                invdate=invdate,
                duedate=duedate,
                amount=Decimal(rng.randrange(1500, 2_500_000)).scaleb(-2),
                currency=currency,
                paid=paid,
                paiddate=paiddate,
                remark=f"PO {rng.randrange(10000, 99999)}" if rng.random() < 0.15 else None,
            )
            invno += 1


#: Who books stock movements in the demo.
STOCK_CLERKS = ("mbauer", "jkoch", "lrossi", "svisser")


def _stock_moves(products, count=60):
    """Movements every 97 minutes, counted from the demo's "today"; two of them logged twice, as the old system does."""
    start = datetime.datetime.combine(TODAY, datetime.time(7, 0), tzinfo=datetime.UTC) - datetime.timedelta(days=5)
    moves = [
        StockMove(
            moved_at=start + datetime.timedelta(minutes=97 * number),
            product_code=f"P-{number % products + 1:05d}",
            quantity=(number * 7) % 23 - 11 or 5,
            username=STOCK_CLERKS[number % len(STOCK_CLERKS)],
        )
        for number in range(count)
    ]
    duplicates = [moves[3], moves[17]]
    return moves + [
        StockMove(**{f.attname: getattr(m, f.attname) for f in StockMove._meta.concrete_fields}) for m in duplicates
    ]


def _prices(rng, products):
    """A price per product and region, in the region's currency."""
    for number in range(1, products + 1):
        product_code = f"P-{number:05d}"
        base = rng.randrange(200, 200_000)
        for region, currency in REGIONS.items():
            yield ProductPrice(
                product_code=product_code,
                region=region,
                price=Decimal(round(base * rng.uniform(0.9, 1.2))).scaleb(-2),
                currency=currency,
                from_field=TODAY.replace(day=1) - datetime.timedelta(days=rng.randrange(0, 3 * 365)),
                discontinued=rng.random() < 0.05,
            )


@contextmanager
def zero_dates_allowed(connection):
    """On MySQL, a session sql_mode that accepts ``0000-00-00`` for the block; the session's own mode after.

    The console connects with ``STRICT_TRANS_TABLES``, which accepts them already; a
    deployment whose ``init_command`` adds ``NO_ZERO_DATE`` (or ``TRADITIONAL``) would not.
    """
    if connection.vendor != "mysql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode")
        (mode,) = cursor.fetchone()
        kept = [flag for flag in mode.split(",") if flag not in ("NO_ZERO_DATE", "NO_ZERO_IN_DATE", "TRADITIONAL")]
        cursor.execute("SET SESSION sql_mode = %s", [",".join(kept)])
        try:
            yield
        finally:
            cursor.execute("SET SESSION sql_mode = %s", [mode])


def _items(connection):
    """A handful of items holding the edge values: zero dates, Latin-1 text, every ENUM and SET case.

    ``SERIAL`` reaches the largest value the column holds on this database (2^64-1 on MySQL).
    """
    largest = connection.ops.integer_field_range("PositiveBigIntegerField")[1]
    sold = datetime.datetime(2026, 6, 1, 9, 30, tzinfo=datetime.UTC)
    rows = [
        ("Crème brûlée Schälchen", "active", "new,fragile", True, largest, "4.50", 10, None, None),
        ("Größe XL Müllbeutel", "discontinued", "", False, 0, "12.99", 20, datetime.date(2001, 5, 2), sold),
        ("Façade-Ölfarbe weiß", "blocked", "sale,bulky", True, 4_294_967_296, "39.90", 30, None, sold),
        ("Smørrebrød-Teller ½ Dutzend", "active", "new,sale,fragile,bulky", True, 1, "7.00", 40, TODAY, None),
    ]
    for descr, status, features, taxable, serial, price, order, created, lastsold in rows:
        yield Itemmast(
            descr=descr,
            status=status,
            features=features,
            taxable=taxable,
            serial=serial,
            unit_price=Decimal(price),
            order=order,
            created=created,
            lastsold=lastsold,
        )
