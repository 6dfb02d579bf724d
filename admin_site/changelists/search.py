"""Changelist search that finds words through a FULLTEXT index instead of scanning the table.

Django searches each ``search_fields`` column with ``LIKE '%term%'``, which
reads every row.  When a ModelAdmin names the columns of a MySQL/MariaDB
FULLTEXT index (``search_fulltext_fields``) and every search field is one of
them, each search term gets ``MATCH (...) AGAINST ('+word* ...' IN BOOLEAN
MODE)``: the index finds the rows holding the term's words (the last one as a
prefix).  A one-word term needs nothing more; a term of several words
("ann.archer@example") keeps Django's ``LIKE`` conditions, which decide among
the few rows the index found.  So the results are Django's for terms that
start at a word; a term starting inside a word ("ndqvist" for "Lindqvist",
"schmidt" in "anna_schmidt": "_" is a letter to InnoDB) finds nothing.

Words the index does not hold cannot narrow anything and are left to
``LIKE``: words shorter than ``innodb_ft_min_token_size`` and InnoDB's
stopwords ("com" in every e-mail address).  A term with no other word (a search
for "ab") is Django's plain, slower scan.  ``^`` and ``=`` fields (prefix and
exact match) keep Django's lookups, which use an ordinary index.  SQLite and
other backends always search as Django does.

A word common enough that the index look-up is slow (InnoDB spends about 4 µs
on each row that holds it: 50 ms for 12,000 customers) is the word that
Django's ``LIKE`` finds within a few rows of the list's start.  So when a
search cannot be counted exactly in its time, ``ChangeListPaginator`` reads the page by
walking the list in its order with each ``Match`` compiled as Django's own
``LIKE`` conditions (``walking``): those pages hold Django's results, a term
inside a word included.  If the walk runs out of time too, the index answers.
The process remembers such a search for a while (``known_common``): its next
page is walked without trying the count again.
"""

import re
import time

from django.db import connections, models
from django.db.models.expressions import ExpressionList
from django.db.models.lookups import IContains
from django.db.models.sql.where import AND, OR, WhereNode
from django.utils.text import smart_split, unescape_string_literal

#: InnoDB's default stopword list (information_schema.INNODB_FT_DEFAULT_STOPWORD).
INNODB_STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the this to was what when "
    "where who will with und www".split()
)
#: InnoDB's word characters: letters, digits and "_"; anything else separates words.
WORD = re.compile(r"\w+")
MAX_TOKEN = 84  # innodb_ft_max_token_size


#: A query with this attribute set compiles each ``Match`` as Django's ``LIKE`` conditions.
WALK = "console_walk"


class Match(models.Lookup):
    """``MATCH (columns) AGAINST (%s IN BOOLEAN MODE)`` as a WHERE condition the FULLTEXT index answers.

    A lookup, not a function: MySQL backends write a boolean function as ``... = 1``
    (true only for a relevance of exactly 1); a lookup goes into WHERE as it is.
    ``terms`` are the search terms it answers alone; in a walking query it is
    their ``icontains`` on ``searched`` (the search fields, among its columns)
    instead; the other terms keep their own ``LIKE`` beside it.
    """

    lookup_name = "console_fulltext"
    prepare_rhs = False

    def __init__(self, *columns, against, terms=(), searched=None):
        super().__init__(ExpressionList(*(models.F(column) for column in columns)), against)
        self.terms = tuple(terms)
        searched = columns if searched is None else searched
        self.searched = [position for position, column in enumerate(columns) if column in searched]

    def as_sql(self, compiler, connection):
        if getattr(compiler.query, WALK, False):
            return self.as_like(compiler, connection)
        columns, params = compiler.compile(self.lhs)
        return f"MATCH ({columns}) AGAINST (%s IN BOOLEAN MODE)", (*params, self.rhs)

    def as_like(self, compiler, connection):
        """Each term in any column, as Django's search writes it (``icontains``); no terms: true."""
        if not self.terms:
            return "1 = 1", ()
        columns = [self.lhs.get_source_expressions()[position] for position in self.searched]
        where = WhereNode(
            [WhereNode([IContains(column, term) for column in columns], connector=OR) for term in self.terms],
            connector=AND,
        )
        sql, params = compiler.compile(where)
        return f"({sql})", params


def matches(queryset):
    """True when ``queryset``'s conditions hold a ``Match`` (a FULLTEXT search)."""

    def walk(node):
        return isinstance(node, Match) or any(walk(child) for child in getattr(node, "children", ()))

    return walk(queryset.query.where)


#: Searches that could not be counted exactly in time, by database and SQL: when (``time.monotonic()``).
_common = {}
#: Seconds a search stays known as common (its count is not tried again); then it is counted once more.
COMMON_FOR = 600
COMMON_MAX = 1024


def search_key(queryset):
    """What names a search for ``known_common``: its database and SQL (compiled once per count)."""
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    return queryset.db, sql, tuple(map(repr, params))


def known_common(key):
    """True when the search ``key`` names recently could not be counted exactly in its time.

    Its next page, another user's same search, a refresh: each would spend
    ``search_time_limit`` on the same count before walking (``walking``).
    Both ways the page holds the same rows; only the time differs.
    """
    when = _common.get(key)
    return when is not None and time.monotonic() - when < COMMON_FOR


def remember_common(key):
    """Note that the search ``key`` names could not be counted exactly in its time (see ``known_common``)."""
    if len(_common) >= COMMON_MAX:
        _common.clear()
    _common[key] = time.monotonic()


def walking(queryset):
    """``queryset`` with its ``Match`` conditions as Django's ``LIKE``: read in the list's order, no index."""
    queryset = queryset._chain()
    setattr(queryset.query, WALK, True)
    return queryset


def min_token_size(alias):
    """``innodb_ft_min_token_size`` of the server behind ``alias`` (read once per connection)."""
    connection = connections[alias]
    size = getattr(connection, "console_ft_min_token_size", None)
    if size is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@innodb_ft_min_token_size")
            size = int(cursor.fetchone()[0])
        connection.console_ft_min_token_size = size
    return size


def boolean_query(term, min_size):
    """``+word* +word* ...`` for the indexed words of ``term``, or None when none is indexed."""
    words = [
        word.lower()
        for word in WORD.findall(term)
        if min_size <= len(word) <= MAX_TOKEN and word.lower() not in INNODB_STOPWORDS
    ]
    return " ".join(f"+{word}*" for word in words) or None


def search_terms(search_term):
    """The terms Django's search splits ``search_term`` into (quotes keep a phrase together)."""
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        yield bit


def fulltext_plan(model_admin, request, queryset, search_term):
    """``(terms left to Django's LIKE search, FULLTEXT conditions)``, or None when the index cannot help.

    A term that is one indexed word, searched in plain (``icontains``) fields
    only, is answered by the index alone: the rows holding a word that starts
    with it are exactly the rows ``LIKE '%word%'`` finds at a word's start.
    Other terms keep Django's ``LIKE`` and get the index as a necessary
    condition (their words, the last one as a prefix), which narrows the rows
    ``LIKE`` has to read.
    """
    columns = tuple(model_admin.search_fulltext_fields)
    search_fields = [str(field) for field in model_admin.get_search_fields(request)]
    fields = {field.lstrip("^=") for field in search_fields}
    if not (columns and search_term and fields <= set(columns) and connections[queryset.db].vendor == "mysql"):
        return None
    plain = all(field == field.lstrip("^=") for field in search_fields)
    min_size = min_token_size(queryset.db)
    like_terms, words, alone = [], [], []
    for term in search_terms(search_term):
        against = boolean_query(term, min_size)
        if against:
            words.append(against)
        if against and plain and WORD.fullmatch(term) and against == f"+{term.lower()}*":
            alone.append(term)
        else:
            like_terms.append(term)
    # One MATCH for all terms: the index intersects their words in one look-up.
    return like_terms, [Match(*columns, against=" ".join(words), terms=alone, searched=fields)] if words else []


def quote(term):
    """``term`` as one search term for ``smart_split`` (the inverse of ``search_terms``)."""
    return '"' + term.replace("\\", "\\\\").replace('"', '\\"') + '"'
