"""Which database the current request (or command) is on: the one mechanism.

A panel pins its alias in a context variable around every view it serves;
management commands and scripts pin with ``using_database(alias)``.  The
router (``routers.py``) reads the pin, so Django's own code paths that ask the
router instead of taking ``using=`` (unique validation, FK validation, M2M,
delete collection, transactions, ...) land on the pinned database.

Context variables are per thread and per task, so concurrent requests on
different panels never see each other's pin.

The pin also says whether the running view may read a replica of the
panel's database: only views that call ``allow_replica_reads`` (lists,
exports) or run in ``reading_replicas`` (the console home, a background
export), only for the methods they name, never inside a transaction.  ``read_database(alias)`` is where both layers (the
router and the ModelAdmin bases) send a read; writes always go to ``alias``.
"""

from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from functools import wraps

from django.db import DatabaseError, connections
from django.template.response import SimpleTemplateResponse

_pinned = ContextVar("console_pinned_database", default=None)
_reads = ContextVar("console_replica_reads", default=None)
#: Methods that never write: only these may read a replica.
SAFE_METHODS = ("GET", "HEAD")


def pinned_database():
    """The alias pinned for the running code, or ``None`` outside any panel."""
    return _pinned.get()


@contextmanager
def using_database(alias):
    """Pin ``alias`` for the block: queries the router decides go there."""
    token = _pinned.set(alias)
    try:
        yield alias
    finally:
        _pinned.reset(token)


class Reads:
    """A request's replica reads: off until its view allows them; each panel's choice made once, then kept."""

    def __init__(self, method=None, session=None, allowed=False):
        self.method = method
        self.session = session
        self.allowed = allowed
        self.chosen = {}

    def database(self, alias):
        from admin_site import replicas

        if alias not in self.chosen:
            self.chosen[alias] = replicas.choose(alias, self.session)  # alias itself when it has no replica
        return self.chosen[alias]

    def replica_that_raised(self, error):
        """The replica this request chose whose connection raised ``error``, if one did."""
        from admin_site.outages import failing_alias

        failed = failing_alias(error)
        return failed if failed in self.chosen.values() and failed not in self.chosen else None


def allow_replica_reads(methods=SAFE_METHODS):
    """Called by a view that only reads (a list, an export): its reads may go to a replica from here on.

    Only for a request made with one of ``methods`` and run through ``pin_view``.
    """
    reads = _reads.get()
    if reads is not None and reads.method in methods:
        reads.allowed = True


@contextmanager
def reading_replicas(session=None):
    """Let the block's reads go to a healthy, caught-up replica (the console home, a background export)."""
    with _reading(Reads(session=session, allowed=True)) as reads:
        yield reads


@contextmanager
def _reading(reads):
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def read_database(alias):
    """Where a read of ``alias``'s data goes now: a replica when the running view allows it, else ``alias``."""
    reads = _reads.get()
    # Only the panel's own data: the console's tables it reads on the way (sessions, users, permissions,
    # history on `users`) come from the primary, so a revoked permission is never read from a lagging copy.
    if reads is None or not reads.allowed or alias != _pinned.get() or connections[alias].in_atomic_block:
        return alias
    return reads.database(alias)


def pin_view(view, alias):
    """Wrap ``view`` so it runs, renders and streams with ``alias`` pinned.

    Rendering happens inside the pin because lazy querysets (filter choices,
    inline formsets, select widgets) are evaluated in templates, after the
    view has returned.  A view that calls ``allow_replica_reads`` reads a
    replica from then on; if that replica fails mid-request it is marked down
    and the view runs again on the primary (such a view does not write).  A
    request with any other method that writes to a panel with replicas leaves
    the primary's position in the session, for the next reads to wait for.
    """
    from admin_site import replicas

    def run(request, args, kwargs, reads):
        with using_database(alias), _reading(reads):
            response = view(request, *args, **kwargs)
            if isinstance(response, SimpleTemplateResponse):
                response.render()
        return response

    @wraps(view)
    def pinned_view(request, *args, **kwargs):
        session = getattr(request, "session", None)
        reads = Reads(request.method, session)
        writes = replicas.remembering_writes(None if request.method in SAFE_METHODS else session)
        try:
            with writes:
                response = run(request, args, kwargs, reads)
        except DatabaseError as error:
            failed = reads.replica_that_raised(error)
            if failed is None:
                raise
            replicas.mark_failed(failed, error)
            reads = Reads(request.method, session)  # replicas are not allowed this time: the primary answers
            response = run(request, args, kwargs, reads)
        if getattr(response, "streaming", False):
            response.streaming_content = pinned_iterator(response.streaming_content, alias, reads)
        return response

    return pinned_view


def pinned_iterator(iterable, alias, reads=None):
    """Yield from ``iterable``, producing each item with ``alias`` pinned (and the request's replica choices).

    Closing this generator early (an abandoned download) closes ``iterable``
    too, so whatever it holds open (a server-side cursor) is released.
    """
    iterator = iter(iterable)
    try:
        while True:
            with using_database(alias), nullcontext() if reads is None else _reading(reads):
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
