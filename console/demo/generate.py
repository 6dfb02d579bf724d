"""Deterministic demo rows for the customers and users databases, as plain tuples.

Pure Python, no database: the ``load_demo_data`` command decides where the
rows go.  Customers come in chunks so a million of them never sit in memory at
once; one ``random.Random`` is consumed customer by customer, so a seed gives
the same data whatever the chunk size.  Values are already in the form both
SQLite and MySQL accept for a raw ``executemany`` (UTC timestamps as text,
money as ``"12.50"``), and the denormalised columns the signals would keep
(``Order.total``, ``Customer.order_count`` and ``lifetime_value``) are computed
here, since bulk inserts send no signals.
"""

import random
import string
import time
import uuid
from dataclasses import dataclass, field

DAY = 86_400
#: Customers are spread over this many days before "now".
HISTORY_DAYS = 3 * 365

# Disjoint lists (and separators in every email pattern) keep email local
# parts unambiguous: one local part can come from one name pair only.
FIRST_NAMES = (
    "Aaron Adele Agnes Alba Alex Alice Amir Anika Anna Anton Arjun Astrid Ben Bianca Boris Carla Carlos Chloe Clara "
    "Daniel David Diana Dora Elena Elif Emil Emma Eric Eva Felix Fiona Frank Freya Gabriel Greta Hana Hannah Hugo Ida "
    "Igor Ines Irene Isaac Ivan Jakob James Jana Jonas Julia Karim Karin Kevin Lara Laura Lea Leon Lina Lisa Luca Lucy "
    "Marco Maria Marta Max Maya Mia Milan Mira Nadia Nina Noah Nora Olga Oliver Omar Oscar Paul Paula Petra Pia Rafael "
    "Rosa Ruben Sara Simon Sofia Stefan Tara Theo Tobias Tom Ugo Vera Victor Wanda Yara Yusuf Zoe"
).split()
LAST_NAMES = (
    "Abbott Alvarez Andersen Bauer Becker Bergstrom Bianchi Blanc Brandt Brown Carter Castillo Costa Dubois Duarte "
    "Eriksson Evans Fischer Fontaine Garcia Gonzalez Green Hansen Hartmann Hoffmann Horvat Jansen Jensen Johansson "
    "Keller Klein Kowalski Kramer Lambert Larsen Laurent Lehmann Lindqvist Lopez Lorenz Marino Martin Meyer Moreau "
    "Morris Muller Nielsen Novak Nowak Olsen Ortega Palmer Perez Peters Petit Quinn Ramos Ricci Richter Romano Rossi "
    "Russo Santos Schmidt Schneider Schubert Silva Sorensen Stewart Svensson Taylor Thomas Turner Varga Vogel Wagner "
    "Walker Weber Wilson Wolf Young Zimmermann"
).split()
EMAIL_DOMAINS = (
    "example.com",
    "example.net",
    "example.org",
    "mail.example.com",
    "post.example.net",
    "inbox.example.org",
    "web.example.com",
    "online.example.net",
)
#: (format, separator) pairs: ``first.last``, ``first_last``, ``last.first``.
EMAIL_PATTERNS = ("{f}.{l}", "{f}_{l}", "{l}.{f}")

#: ISO code -> (weight, phone prefix, postcode pattern (# digit, @ letter), in the EU VAT area, cities).
COUNTRIES = {
    "DE": (18, "49", "#####", True, ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Stuttgart")),
    "US": (15, "1", "#####", False, ("New York", "Chicago", "Austin", "Seattle", "Denver", "Boston")),
    "GB": (10, "44", "@@# #@@", True, ("London", "Manchester", "Leeds", "Bristol", "Glasgow")),
    "FR": (9, "33", "#####", True, ("Paris", "Lyon", "Marseille", "Toulouse", "Lille")),
    "NL": (6, "31", "#### @@", True, ("Amsterdam", "Rotterdam", "Utrecht", "Eindhoven")),
    "ES": (5, "34", "#####", True, ("Madrid", "Barcelona", "Valencia", "Seville")),
    "IT": (5, "39", "#####", True, ("Rome", "Milan", "Turin", "Bologna", "Naples")),
    "PL": (4, "48", "##-###", True, ("Warsaw", "Krakow", "Gdansk", "Wroclaw")),
    "AT": (4, "43", "####", True, ("Vienna", "Graz", "Linz", "Salzburg")),
    "CH": (4, "41", "####", False, ("Zurich", "Geneva", "Basel", "Bern")),
    "SE": (3, "46", "### ##", True, ("Stockholm", "Gothenburg", "Malmo", "Uppsala")),
    "BE": (3, "32", "####", True, ("Brussels", "Antwerp", "Ghent", "Liege")),
    "CA": (3, "1", "@#@ #@#", False, ("Toronto", "Montreal", "Vancouver", "Calgary")),
    "DK": (2, "45", "####", True, ("Copenhagen", "Aarhus", "Odense")),
    "IE": (2, "353", "@## @@##", True, ("Dublin", "Cork", "Galway")),
    "AU": (2, "61", "####", False, ("Sydney", "Melbourne", "Brisbane", "Perth")),
}
COMPANY_FORMS = {
    "DE": "GmbH",
    "AT": "GmbH",
    "CH": "AG",
    "GB": "Ltd",
    "IE": "Ltd",
    "US": "Inc.",
    "CA": "Inc.",
    "AU": "Pty Ltd",
    "FR": "SARL",
    "NL": "B.V.",
    "BE": "BV",
    "ES": "S.L.",
    "IT": "S.r.l.",
    "PL": "Sp. z o.o.",
    "SE": "AB",
    "DK": "ApS",
}
COMPANY_WORDS = (
    "Alpine Atlas Beacon Birch Blue Cedar Copper Crown Delta Eagle Falcon Granite Harbor Iron Juniper Lakeside "
    "Maple Meridian North Oak Orbit Pioneer Quartz River Silver Summit Vector Willow"
).split()
COMPANY_TRADES = (
    "Logistics Analytics Foods Textiles Systems Engineering Trading Media Pharma Robotics Energy Furniture Tools "
    "Consulting Software Optics"
).split()
STREETS = (
    "Main Street",
    "Station Road",
    "Market Square",
    "Church Lane",
    "Harbour Way",
    "Park Avenue",
    "Mill Road",
    "Garden Street",
    "Bridge Street",
    "Castle Hill",
    "High Street",
    "Orchard Lane",
    "Riverside",
    "Victoria Road",
    "Elm Grove",
    "Canal Street",
)
#: Product lines and their price factor, products and their base price in cents.
PRODUCT_LINES = (("Basic", 0.7), ("Classic", 1.0), ("Compact", 0.9), ("Eco", 1.1), ("Deluxe", 1.6), ("Pro", 2.2))
PRODUCT_KINDS = (
    ("Cable", 999),
    ("Charger", 2499),
    ("Desk Lamp", 3990),
    ("Headset", 7900),
    ("Keyboard", 5900),
    ("Monitor Arm", 8900),
    ("Mouse", 2900),
    ("Notebook", 499),
    ("Webcam", 6900),
)
#: (SKU, description, unit price in cents), prices ending in .99 or .90 like a shop's.
PRODUCTS = tuple(
    (f"SKU-{1001 + n:04d}", f"{line} {kind}", int(base * factor) // 100 * 100 + (99 if n % 3 else 90))
    for n, ((line, factor), (kind, base)) in enumerate(
        (product_line, product_kind) for product_line in PRODUCT_LINES for product_kind in PRODUCT_KINDS
    )
)
TAG_NAMES = (
    "newsletter",
    "b2b",
    "wholesale",
    "early-adopter",
    "churn-risk",
    "priority-support",
    "partner",
    "reseller",
    "trade-fair",
    "referral",
)
NOTES = (
    "Prefers email over phone.",
    "Asked for quarterly invoices.",
    "Met at the trade fair.",
    "Call before delivering.",
    "Interested in the premium plan.",
)


def weighted(pairs):
    """A pool where each value appears ``weight`` times: ``rng.choice`` on it is a fast weighted pick."""
    return tuple(value for value, weight in pairs for _ in range(weight))


COUNTRY_POOL = weighted((code, spec[0]) for code, spec in COUNTRIES.items())
STATUS_POOL = weighted((("active", 70), ("lead", 14), ("suspended", 5), ("closed", 11)))
TIER_POOL = weighted((("standard", 70), ("silver", 18), ("gold", 9), ("vip", 3)))
#: Orders per customer (0-5); better tiers order more.
ORDER_COUNT_POOLS = {
    "standard": weighted(((0, 20), (1, 25), (2, 25), (3, 15), (4, 10), (5, 5))),
    "silver": weighted(((0, 10), (1, 15), (2, 25), (3, 25), (4, 15), (5, 10))),
    "gold": weighted(((0, 5), (1, 10), (2, 20), (3, 25), (4, 20), (5, 20))),
    "vip": weighted(((1, 5), (2, 10), (3, 20), (4, 30), (5, 35))),
}
LINE_COUNT_POOL = weighted(((1, 35), (2, 30), (3, 20), (4, 15)))
QUANTITY_POOL = weighted(((1, 60), (2, 20), (3, 10), (4, 6), (5, 4)))
TAG_COUNT_POOL = weighted(((0, 40), (1, 35), (2, 18), (3, 7)))
BUSINESS_SHARE = 0.15
DIGITS, LETTERS = string.digits, string.ascii_uppercase

CUSTOMER_FIELDS = (
    "id",
    "created_at",
    "updated_at",
    "name",
    "email",
    "phone",
    "country",
    "status",
    "tier",
    "notes",
    "reference",
    "order_count",
    "lifetime_value",
    "contact_count",
    "last_contacted_at",
)
BUSINESS_FIELDS = ("customer_ptr", "company_name", "vat_number", "employees")
ADDRESS_FIELDS = ("customer", "created_at", "updated_at", "kind", "line1", "line2", "city", "postcode", "country")
ORDER_FIELDS = ("id", "customer", "created_at", "updated_at", "number", "status", "placed_on", "total")
LINE_FIELDS = ("order", "sku", "description", "quantity", "unit_price")
CUSTOMER_TAG_FIELDS = ("customer", "tag")


def pick(random, seq):
    """``random.choice`` without its overhead: one C call per pick (this is the hot path)."""
    return seq[int(random() * len(seq))]


def between(random, low, high):
    """An integer in ``[low, high]``, like ``randint`` but a third of the cost."""
    return low + int(random() * (high - low + 1))


def pick_distinct(random, seq, k):
    """``k`` different items of ``seq`` (k small, seq large), like ``random.sample``."""
    chosen = []
    while len(chosen) < k:
        item = seq[int(random() * len(seq))]
        if item not in chosen:
            chosen.append(item)
    return chosen


def stamp(ts):
    """Epoch seconds -> naive UTC ``YYYY-MM-DD HH:MM:SS``, how Django stores an aware datetime."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def day(ts):
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def money(cents):
    """Integer cents -> ``"12.50"``: exact, no float or Decimal on the hot path."""
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass
class Chunk:
    """The rows of one batch of customers, one list of tuples per table."""

    customers: list = field(default_factory=list)
    businesses: list = field(default_factory=list)
    addresses: list = field(default_factory=list)
    orders: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    customer_tags: list = field(default_factory=list)

    def tables(self):
        """(name, rows) in insert order: parents before the rows that point at them."""
        return (
            ("customers", self.customers),
            ("business customers", self.businesses),
            ("addresses", self.addresses),
            ("orders", self.orders),
            ("order lines", self.lines),
            ("customer tags", self.customer_tags),
        )

    @property
    def row_count(self):
        return sum(len(rows) for _, rows in self.tables())


class EmailBook:
    """Unique lower-case addresses: the second ``anna.meyer@`` becomes ``anna.meyer2@``.

    Counts live in a flat list indexed by (pattern, first, last, domain), a
    couple of megabytes however many customers; names never end in a digit,
    so a numbered address cannot meet an unnumbered one.
    """

    def __init__(self):
        self.counts = [0] * (len(EMAIL_PATTERNS) * len(FIRST_NAMES) * len(LAST_NAMES) * len(EMAIL_DOMAINS))

    def address(self, random, first, last):
        pattern, domain = int(random() * len(EMAIL_PATTERNS)), int(random() * len(EMAIL_DOMAINS))
        key = ((pattern * len(FIRST_NAMES) + first) * len(LAST_NAMES) + last) * len(EMAIL_DOMAINS) + domain
        self.counts[key] += 1
        n = self.counts[key]
        local = EMAIL_PATTERNS[pattern].format(f=FIRST_NAMES[first], l=LAST_NAMES[last]).lower()
        return f"{local}{n if n > 1 else ''}@{EMAIL_DOMAINS[domain]}"


class CustomerRows:
    """Customers with their addresses, orders, lines and tags, generated in order.

    ``uuid_hex`` picks the stored form of ``Customer.reference``: 32 hex digits
    (SQLite, MySQL) or the hyphenated form (a native UUID column, MariaDB 10.7+).
    """

    def __init__(self, seed, count, now, tag_ids, first_customer_id=1, first_order_id=1, uuid_hex=True):
        self.rng = random.Random(f"customers-{seed}")
        self.random = self.rng.random
        self.count, self.now, self.tag_ids = count, int(now), list(tag_ids)
        self.next_customer_id, self.next_order_id = first_customer_id, first_order_id
        self.uuid_hex = uuid_hex
        self.emails = EmailBook()
        self.done = 0

    def chunks(self, size):
        """Yield :class:`Chunk` objects of up to ``size`` customers until ``count`` are made."""
        while self.done < self.count:
            chunk = Chunk()
            for _ in range(min(size, self.count - self.done)):
                self.add_customer(chunk)
                self.done += 1
            yield chunk

    def created_ts(self):
        """Ids grow with time, and more customers joined recently (the shop grew)."""
        share = ((self.done + self.random()) / self.count) ** 0.75
        return min(self.now - HISTORY_DAYS * DAY + int(HISTORY_DAYS * DAY * share), self.now - 3600)

    def add_customer(self, chunk):
        r = self.random
        pk, self.next_customer_id = self.next_customer_id, self.next_customer_id + 1
        created = self.created_ts()
        first, last = int(r() * len(FIRST_NAMES)), int(r() * len(LAST_NAMES))
        country, status, tier = pick(r, COUNTRY_POOL), pick(r, STATUS_POOL), pick(r, TIER_POOL)
        name = f"{FIRST_NAMES[first]} {LAST_NAMES[last]}"
        if r() < BUSINESS_SHARE:
            name = self.add_business(chunk, pk, country, last)
        order_count, value, last_change = self.add_orders(chunk, pk, created, status, tier)
        contacts, contacted = self.contacts(created, status)
        reference = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        chunk.customers.append(
            (
                pk,
                stamp(created),
                stamp(max(created, last_change, contacted or 0)),
                name,
                self.emails.address(r, first, last),
                self.phone(country),
                country,
                status,
                tier,
                pick(r, NOTES) if r() < 0.05 else "",
                reference.hex if self.uuid_hex else str(reference),
                order_count,
                money(value),
                contacts,
                stamp(contacted) if contacted else None,
            )
        )
        self.add_addresses(chunk, pk, created, country)
        tag_count = min(pick(r, TAG_COUNT_POOL), len(self.tag_ids))
        chunk.customer_tags.extend((pk, tag_id) for tag_id in pick_distinct(r, self.tag_ids, tag_count))

    def add_business(self, chunk, pk, country, last):
        """The child row of a business customer (same pk); returns the company name."""
        r = self.random
        owner = LAST_NAMES[last] if r() < 0.5 else pick(r, COMPANY_WORDS)
        company = f"{owner} {pick(r, COMPANY_TRADES)} {COMPANY_FORMS[country]}"
        # Derived from the pk, so unique without bookkeeping; VAT ids only where they exist.
        vat = f"{country}{pk:09d}" if COUNTRIES[country][3] else None
        employees = None if r() < 0.1 else min(int(4 / (1.0 - r()) ** 0.9), 50_000)  # long-tailed
        chunk.businesses.append((pk, company, vat, employees))
        return company

    def add_orders(self, chunk, customer_id, created, status, tier):
        """Orders and lines; returns (order count, lifetime value in cents, last change) as the signals would."""
        r = self.random
        if status == "lead":
            return 0, 0, 0
        counted = value = last_change = 0
        n = pick(r, ORDER_COUNT_POOLS[tier])
        for placed in sorted(between(r, created, self.now - 60) for _ in range(n)):
            order_id, self.next_order_id = self.next_order_id, self.next_order_id + 1
            total = self.add_lines(chunk, order_id)
            order_status = self.order_status(placed)
            updated = placed if order_status == "open" else min(placed + between(r, 0, 5 * DAY), self.now - 1)
            number = f"SO-{order_id:08d}"
            chunk.orders.append(
                (order_id, customer_id, stamp(placed), stamp(updated), number, order_status, day(placed), money(total))
            )
            last_change = updated
            if order_status != "cancelled":
                counted, value = counted + 1, value + total
        return counted, value, last_change

    def add_lines(self, chunk, order_id):
        """1-4 distinct products (SKUs are unique per order); returns the order total in cents."""
        r = self.random
        total = 0
        for sku, description, cents in pick_distinct(r, PRODUCTS, pick(r, LINE_COUNT_POOL)):
            quantity = pick(r, QUANTITY_POOL)
            chunk.lines.append((order_id, sku, description, quantity, money(cents)))
            total += quantity * cents
        return total

    def order_status(self, placed):
        """Old orders have shipped, recent ones are open or paid; a few are cancelled."""
        r = self.random
        age = self.now - placed
        if r() < 0.06:
            return "cancelled"
        if age < 2 * DAY:
            return "open" if r() < 0.6 else "paid"
        if age < 10 * DAY:
            return "paid" if r() < 0.5 else "shipped"
        return "shipped"

    def contacts(self, created, status):
        """How often the customer was contacted, and when last (``None`` if never)."""
        r = self.random
        count = pick(r, (0, 0, 1, 2) if status == "lead" else (0, 1, 1, 2, 3, 5))
        return count, (between(r, created, self.now - 1) if count else None)

    def add_addresses(self, chunk, customer_id, created, country):
        """A billing address, and for two in five customers a shipping one in the same city."""
        r = self.random
        city = pick(r, COUNTRIES[country][4])
        created_at = stamp(created)
        for kind in ("billing", "shipping") if r() < 0.4 else ("billing",):
            line1 = f"{between(r, 1, 240)} {pick(r, STREETS)}"
            line2 = f"Apt {between(r, 1, 40)}" if r() < 0.15 else ""
            postcode = self.postcode(country)
            chunk.addresses.append((customer_id, created_at, created_at, kind, line1, line2, city, postcode, country))

    def postcode(self, country):
        r = self.random
        return "".join(
            DIGITS[int(r() * 10)] if c == "#" else LETTERS[int(r() * 26)] if c == "@" else c
            for c in COUNTRIES[country][2]
        )

    def phone(self, country):
        """About a fifth of customers left no phone number."""
        r = self.random
        if r() < 0.2:
            return ""
        return f"+{COUNTRIES[country][1]} {between(r, 10, 99)} {between(r, 1_000_000, 9_999_999)}"


TEAMS = (
    ("Customer Support", "First-line answers to customer questions."),
    ("Sales", "New business and account management."),
    ("Finance", "Invoices, refunds and credit limits."),
    ("Data Protection", "Access requests and erasure."),
    ("Engineering", "Keeps the console and its databases running."),
    ("Operations", "Orders, shipping and returns."),
)
TIMEZONES = ("Europe/Berlin", "Europe/London", "Europe/Paris", "America/New_York", "UTC", "Europe/Stockholm")


@dataclass
class StaffUser:
    """One demo console user: auth fields, profile fields, teams and panels it may enter."""

    username: str
    first_name: str
    last_name: str
    email: str
    is_active: bool
    date_joined: int
    phone: str
    timezone: str
    teams: list
    panels: list


def staff_users(seed, count, now, panels):
    """``count`` staff users; every fourth gets no panel access, to show panels are permissioned."""
    rng = random.Random(f"users-{seed}")
    taken = {}
    users = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base = f"{first}.{last}".lower()
        taken[base] = taken.get(base, 0) + 1
        username = base if taken[base] == 1 else f"{base}{taken[base]}"
        granted = [] if i % 4 == 3 else rng.sample(list(panels), rng.randint(1, len(panels))) if panels else []
        users.append(
            StaffUser(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@staff.example.com",
                is_active=rng.random() < 0.9,
                date_joined=int(now) - rng.randint(1, HISTORY_DAYS) * DAY,
                phone=f"+49 30 {rng.randint(1_000_000, 9_999_999)}" if rng.random() < 0.7 else "",
                timezone=rng.choice(TIMEZONES),
                teams=[name for name, _ in rng.sample(TEAMS, rng.randint(1, 2))],
                panels=sorted(granted),
            )
        )
    return users
