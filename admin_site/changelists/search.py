"""Changelist search: words through a FULLTEXT index on MySQL/MariaDB, Django's substring search elsewhere.

Each backend gives a search one meaning, whatever the load:

* MySQL/MariaDB, for a ModelAdmin whose ``search_fields`` a FULLTEXT index
  holds (``search_fulltext_fields``, the index's columns in
  ``search_fulltext_columns``): each term finds the rows holding its words,
  the last one as a prefix (``MATCH ... AGAINST ('+word* ...' IN BOOLEAN
  MODE)``).  A one-word term needs nothing more; a term of several words
  ("ann.archer@example") also keeps Django's ``LIKE``, which decides among
  the rows the index found.  A term starting inside a word ("ndqvist" for
  "Lindqvist") finds nothing.  Words the index does not hold (shorter than
  ``innodb_ft_min_token_size``, or InnoDB stopwords such as "com") cannot
  narrow anything: a term of only such words is Django's scan.  ``^`` and
  ``=`` fields keep Django's lookups.
* SQLite and other backends: Django's search, each term found anywhere
  (``icontains``).
* On every backend, a term starting with ``*`` (``*ndqvist``) is Django's
  search for the rest of it: found inside words too.  Where the index would
  answer the search, that reads every row, and the changelist says so
  (``substring_warning``).
"""

import itertools
import re

from django.core.exceptions import BadRequest
from django.db import connections, models
from django.db.models.expressions import ExpressionList
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

#: InnoDB's default stopword list (information_schema.INNODB_FT_DEFAULT_STOPWORD).
INNODB_STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the this to was what when "
    "where who will with und www".split()
)
#: Words of an indexed column: letters and digits; InnoDB takes "_" for a letter, the column holds a space.
WORD = re.compile(r"[^\W_]+")
MAX_TOKEN = 84  # innodb_ft_max_token_size
#: A search term starting with this is searched as a substring (Django's ``icontains``), inside words too.
SUBSTRING_MARK = "*"
#: Terms a search may have: each is a condition on every search field (SQLite's expression depth ends near 1,000).
MAX_SEARCH_TERMS = 50
#: Substring terms the warning names, each cut to ``WARNING_TERM_CHARS`` characters.
WARNING_TERMS, WARNING_TERM_CHARS = 5, 40


class Match(models.Lookup):
    """``MATCH (columns) AGAINST (%s IN BOOLEAN MODE)`` as a WHERE condition the FULLTEXT index answers.

    A lookup, not a function: MySQL backends write a boolean function as ``... = 1``
    (true only for a relevance of exactly 1); a lookup goes into WHERE as it is.
    """

    lookup_name = "console_fulltext"
    prepare_rhs = False

    def __init__(self, *columns, against):
        super().__init__(ExpressionList(*(models.F(column) for column in columns)), against)

    def as_sql(self, compiler, connection):
        columns, params = compiler.compile(self.lhs)
        return f"MATCH ({columns}) AGAINST (%s IN BOOLEAN MODE)", (*params, self.rhs)


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


def check_search(search_term):
    """Refuse (400) a search of more than ``MAX_SEARCH_TERMS`` terms: no one types it, and its SQL may not build."""
    if len(list(itertools.islice(search_terms(search_term), MAX_SEARCH_TERMS + 1))) > MAX_SEARCH_TERMS:
        raise BadRequest(f"A search may have at most {MAX_SEARCH_TERMS} terms.")


def split_terms(search_term):
    """``(word terms, substring terms)`` of ``search_term``: a substring term loses its leading ``*``.

    A term that is only ``*`` marks nothing and is dropped, on every backend.
    """
    words, substrings = [], []
    for term in search_terms(search_term):
        if term.startswith(SUBSTRING_MARK):
            if term := term.lstrip(SUBSTRING_MARK):
                substrings.append(term)
        else:
            words.append(term)
    return words, substrings


def fulltext_columns(model_admin, request, alias):
    """The FULLTEXT index's columns that answer ``model_admin``'s search on ``alias``, or None.

    Only on MySQL/MariaDB, and only when every search field is one the index holds.
    """
    fields = set(model_admin.search_fulltext_fields)
    columns = tuple(model_admin.search_fulltext_columns or model_admin.search_fulltext_fields)
    searched = {str(field).lstrip("^=") for field in model_admin.get_search_fields(request)}
    if fields and searched and searched <= fields and connections[alias].vendor == "mysql":
        return columns
    return None


def fulltext_plan(model_admin, request, queryset, search_term):
    """``(terms left to Django's search, FULLTEXT conditions)``, or None when the index does not answer.

    A term that is one indexed word, searched in plain (``icontains``) fields
    only, is answered by the index alone: the rows holding a word that starts
    with it.  Other word terms keep Django's ``LIKE`` and get the index as a
    condition too (their words, the last one as a prefix), which narrows the
    rows ``LIKE`` has to read.  Substring terms (``*term``) keep Django's
    ``LIKE`` only.
    """
    columns = fulltext_columns(model_admin, request, queryset.db)
    if not (columns and search_term):
        return None
    plain = all(str(field) == str(field).lstrip("^=") for field in model_admin.get_search_fields(request))
    min_size = min_token_size(queryset.db)
    word_terms, like_terms = split_terms(search_term)
    words = []
    for term in word_terms:
        against = boolean_query(term, min_size)
        if against:
            words.append(against)
        if not (against and plain and WORD.fullmatch(term) and against == f"+{term.lower()}*"):
            like_terms.append(term)
    # One MATCH for all terms: the index intersects their words in one look-up.
    return like_terms, [Match(*columns, against=" ".join(words))] if words else []


def substring_warning(model_admin, request, alias, search_term):
    """The warning a search with ``*term`` terms gets where the index answers searches, else None."""
    substrings = split_terms(search_term)[1]
    if not substrings or fulltext_columns(model_admin, request, alias) is None:
        return None
    unique = list(dict.fromkeys(substrings))
    shown = [
        f"“{term[:WARNING_TERM_CHARS]}…”" if len(term) > WARNING_TERM_CHARS else f"“{term}”"
        for term in unique[:WARNING_TERMS]
    ]
    if len(unique) > WARNING_TERMS:
        shown.append(_("%(count)d more") % {"count": len(unique) - WARNING_TERMS})
    return ngettext(
        "%(terms)s is searched inside words too (*): that reads every row of the list and can be slow. "
        "Without the *, a search finds words and the start of words through the index.",
        "%(terms)s are searched inside words too (*): that reads every row of the list and can be slow. "
        "Without the *, a search finds words and the start of words through the index.",
        len(unique),
    ) % {"terms": ", ".join(shown)}


def quote(term):
    """``term`` as one search term for ``smart_split`` (the inverse of ``search_terms``)."""
    return '"' + term.replace("\\", "\\\\").replace('"', '\\"') + '"'
