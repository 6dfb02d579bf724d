"""Which database the current request (or command) is on: the one mechanism.

A panel pins its alias in a context variable around every view it serves;
management commands and scripts pin with ``using_database(alias)``.  The
router (``routers.py``) reads the pin, so Django's own code paths that ask the
router instead of taking ``using=`` (unique validation, FK validation, M2M,
delete collection, transactions, ...) land on the pinned database.

Context variables are per thread and per task, so concurrent requests on
different panels never see each other's pin.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps

from django.template.response import SimpleTemplateResponse

_pinned = ContextVar("console_pinned_database", default=None)


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


def pin_view(view, alias):
    """Wrap ``view`` so it runs, renders and streams with ``alias`` pinned.

    Rendering happens inside the pin because lazy querysets (filter choices,
    inline formsets, select widgets) are evaluated in templates, after the
    view has returned.
    """

    @wraps(view)
    def pinned_view(request, *args, **kwargs):
        with using_database(alias):
            response = view(request, *args, **kwargs)
            if isinstance(response, SimpleTemplateResponse):
                response.render()
        if getattr(response, "streaming", False):
            response.streaming_content = pinned_iterator(response.streaming_content, alias)
        return response

    return pinned_view


def pinned_iterator(iterable, alias):
    """Yield from ``iterable``, producing each item with ``alias`` pinned.

    Closing this generator early (an abandoned download) closes ``iterable``
    too, so whatever it holds open (a server-side cursor) is released.
    """
    iterator = iter(iterable)
    try:
        while True:
            with using_database(alias):
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
