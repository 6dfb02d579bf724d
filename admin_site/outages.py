"""A database that stops answering: a 503 page naming it, and one log line each way.

When a panel's database goes away, every request to it fails the same way.  This
module turns those failures into a short *outage*:

- ``is_unreachable(exc)`` says whether an error means the server cannot be
  reached (connection refused or lost, server gone away, an SQLite file that
  cannot be opened), as opposed to an error of the request itself (integrity,
  syntax, a statement time limit), which stays Django's 500 with a traceback.
- ``failing_alias(exc)`` finds the connection that raised it (see there why not
  the panel of the URL).
- ``DatabaseOutageMiddleware`` answers such a request with a 503 page naming the
  database (``admin_site/unavailable.html``) and a ``Retry-After`` header.
- ``OutageBoard`` remembers, per alias, whether an outage is going on, so the
  log (logger ``admin_site.outages``) gets one line with the first traceback when
  it starts and one line when the database is back: the first new connection to
  it (``connection_created``) or a successful ``probe()`` from the console home.
  ``SkipOutagePages`` keeps Django (``django.request``) from logging each 503 again.

The board is per process state about an external service: with several server
processes, each logs its own outage line.  It changes no behaviour of other
threads: requests still try their database, which is how recovery is noticed.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import Error, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper
from django.db.utils import DatabaseErrorWrapper
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger(__name__)

#: MySQL/MariaDB error codes that mean "the server cannot be reached", not "the query failed".
CONNECTION_ERROR_CODES = frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1053,  # ER_SERVER_SHUTDOWN: server shutdown in progress
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        2002,  # CR_CONNECTION_ERROR: cannot connect through the socket
        2003,  # CR_CONN_HOST_ERROR: cannot connect to the host (refused, timed out)
        2005,  # CR_UNKNOWN_HOST
        2006,  # CR_SERVER_GONE_ERROR: server has gone away
        2013,  # CR_SERVER_LOST: lost connection during a query
        2055,  # CR_SERVER_LOST_EXTENDED: lost connection at a system call
    }
)
#: The same, for drivers that only give a message (SQLite, or a code-less PyMySQL error).
CONNECTION_ERROR_MESSAGES = (
    "server has gone away",
    "lost connection to",
    "can't connect to",
    "unable to open database file",
)

#: How long a probe from the console home waits to connect, and then for the server's greeting.
PROBE_TIMEOUT = 1


def is_unreachable(exc):
    """Whether ``exc`` means its database cannot be reached.

    The first database error in ``exc``'s chain decides (Django's wrapper is
    judged by the driver's error it was raised from).  Interface errors are
    connection-level (the driver has no usable connection), except sqlite3's,
    which mean a bad parameter; operational errors only with one of the codes
    or messages above.  Everything else (IntegrityError, ProgrammingError, a
    deadlock, a statement time limit) is an error of the request.  Classes are
    compared by their PEP 249 names: ``pymysql.err`` can be loaded twice (once
    as ``MySQLdb.err``), so PyMySQL's own classes are not always the ones a
    module imported.
    """
    for error in _chain(exc):
        kinds = {cls.__name__ for cls in type(error).__mro__}
        if not kinds & {"DatabaseError", "InterfaceError"}:
            continue  # not a database error: look at what it was raised from
        if type(error).__module__ == "django.db.utils" and error.__cause__ is not None:
            continue
        if "InterfaceError" in kinds:
            return type(error).__module__ != "sqlite3"
        code = error.args[0] if error.args and isinstance(error.args[0], int) else None
        message = str(error).lower()
        return code in CONNECTION_ERROR_CODES or (
            "OperationalError" in kinds and any(text in message for text in CONNECTION_ERROR_MESSAGES)
        )
    return False


def failing_alias(exc):
    """The alias of the connection that raised ``exc``, or ``None`` if no connection did.

    The exception carries no alias, and the request's panel is not the answer:
    a request to ``/customers/`` also reads its session and user from the
    ``users`` database, and the pin (``admin_site.pinning``) is reset before any
    middleware sees the exception.  Django raises every database error inside a
    method of the connection that failed (``ensure_connection``, a cursor's
    ``execute``, through ``DatabaseErrorWrapper``), so the innermost traceback
    frame holding a ``DatabaseWrapper`` (or a cursor or error wrapper of one) is
    that connection.  Frames are matched on ``type()``, never ``isinstance()``,
    which would evaluate lazy objects such as ``request.user``.
    """
    for error in _chain(exc):
        frames = []
        tb = error.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in reversed(frames):
            for value in frame.f_locals.values():
                wrapper = _wrapper_of(value)
                if wrapper is not None:
                    return wrapper.alias
    return None


def _wrapper_of(value):
    """The ``DatabaseWrapper`` that ``value`` is, or belongs to (a cursor, an error wrapper), else ``None``."""
    kind = type(value)
    if issubclass(kind, CursorWrapper):
        value = value.db
    elif issubclass(kind, DatabaseErrorWrapper):
        value = value.wrapper
    return value if issubclass(type(value), BaseDatabaseWrapper) else None


def _chain(exc):
    """``exc`` and the exceptions it was raised from or while handling, once each."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def panel_of(alias):
    """The panel configuration (title, colour) of ``alias``, or a plain one for another alias."""
    return settings.CONSOLE_DATABASES.get(alias, {"title": alias, "colour": "#417690"})


class Outage:
    """One database's outage, as this process saw it."""

    def __init__(self, alias):
        self.alias = alias
        self.since = time.time()
        self.started = time.monotonic()
        self.failures = 0


class OutageBoard:
    """Which databases are down in this process: a lock around a dict of ``Outage`` by alias."""

    def __init__(self):
        self._lock = threading.Lock()
        self._outages = {}

    def failed(self, alias, exc):
        """Record a failure of ``alias``; log it, with its traceback, if it starts an outage."""
        with self._lock:
            outage = self._outages.get(alias)
            starts = outage is None
            if starts:
                outage = self._outages[alias] = Outage(alias)
            outage.failures += 1
        if starts:
            logger.error(
                "Database %r (%s) is unreachable: %s. Its requests answer 503 until it is back; "
                "further failures are not logged.",
                alias,
                panel_of(alias)["title"],
                _summary(exc),
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        return starts

    def succeeded(self, alias):
        """Record that ``alias`` answered; log its return if it was down."""
        if alias not in self._outages:  # the common case, without the lock
            return False
        with self._lock:
            outage = self._outages.pop(alias, None)
        if outage is None:
            return False
        logger.warning(
            "Database %r (%s) is back after %.1f s; %d failed request(s) or check(s) meanwhile.",
            alias,
            panel_of(alias)["title"],
            time.monotonic() - outage.started,
            outage.failures,
        )
        return True

    def outage(self, alias):
        """The current ``Outage`` of ``alias``, or ``None`` when it is not known to be down."""
        return self._outages.get(alias)

    def clear(self):
        """Forget every outage (tests)."""
        with self._lock:
            self._outages.clear()


#: This process's view of its databases.
board = OutageBoard()


def _connected(sender, connection, **kwargs):
    """A new connection succeeded: its database is back, if it was down."""
    board.succeeded(connection.alias)


connection_created.connect(_connected, dispatch_uid="admin_site.outages")


def probe(alias, timeout=PROBE_TIMEOUT):
    """Check that ``alias`` answers, waiting at most about ``timeout`` seconds; return the error or ``None``.

    On MySQL/MariaDB a separate connection with short connect and read
    time-outs, so that a server that hangs does not hold the caller for the
    driver's default 10 s (or, without a read time-out, forever); elsewhere
    (SQLite: a local file) the alias's own connection.  The board learns the
    outcome: a probe can start an outage or end one.
    """
    connection = connections[alias]
    try:
        if connection.vendor == "mysql":
            params = {**connection.get_connection_params(), "connect_timeout": timeout, "read_timeout": timeout}
            connection.Database.connect(**params).close()
        else:
            connection.ensure_connection()
    except (Error, connection.Database.Error) as exc:
        if is_unreachable(exc):
            board.failed(alias, exc)
        return exc
    board.succeeded(alias)
    return None


def _summary(exc):
    return f"{type(exc).__name__}: {exc}"


class DatabaseOutageMiddleware:
    """Answer a request whose database cannot be reached with a 503 page naming it."""

    #: Seconds a client is asked to wait before trying again (``Retry-After``).
    retry_after = 5
    template_name = "admin_site/unavailable.html"

    def __init__(self, get_response):
        self.get_response = get_response
        SkipOutagePages.install()

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        """The 503 page when ``exception`` means a database is unreachable; ``None`` lets Django answer."""
        if not is_unreachable(exception):
            return None
        alias = failing_alias(exception)
        if alias is None:
            return None
        board.failed(alias, exception)
        request.database_outage = alias
        return self.unavailable_response(alias)

    def unavailable_response(self, alias):
        """The 503 page for ``alias``.

        Rendered without the request: its context processors would read the
        user, and the user may live in the database that is down.
        """
        panel = panel_of(alias)
        context = {
            "title": "Database unavailable",
            "site_title": "Data Console",
            "panel_alias": alias,
            "panel_title": panel["title"],
            "panel_colour": panel.get("colour", "#417690"),
            "retry_after": self.retry_after,
        }
        response = HttpResponse(render_to_string(self.template_name, context), status=503)
        response["Retry-After"] = str(self.retry_after)
        add_never_cache_headers(response)
        return response


class SkipOutagePages(logging.Filter):
    """Drop ``django.request``'s per-request record of a 503 this module (or the drift page) answered and logged.

    Django logs every 5xx response on ``django.request``, with the request in
    the record; without this filter an outage would still write a line per
    request.  The middleware installs it, whatever ``LOGGING`` a settings
    module chose, so that no deployment floods its log again.
    """

    def filter(self, record):
        request = getattr(record, "request", None)
        # schema_drift: a drifted legacy page (admin_site.drift), logged once with its differences.
        return getattr(request, "database_outage", None) is None and not getattr(request, "schema_drift", False)

    @classmethod
    def install(cls, logger_name="django.request"):
        """Add the filter to ``logger_name`` unless it is there already."""
        target = logging.getLogger(logger_name)
        if not any(isinstance(existing, cls) for existing in target.filters):
            target.addFilter(cls())
