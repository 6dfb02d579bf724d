"""Idle time-out of staff sessions: a signed-in session's expiry moves forward as it is used, at most once a minute.

A session lasts ``SESSION_COOKIE_AGE`` (``CONSOLE_SESSION_IDLE_MINUTES``) from its last save.  Django's own
``SESSION_SAVE_EVERY_REQUEST`` would save it on every request: a write on the ``users`` database for each page,
and a write in requests that must write nothing (an import preview).  Here a session is
saved again only when its last save is a minute old (a tenth of the limit, when that is shorter), so it ends
between ``IDLE - 1`` and ``IDLE`` minutes after its last use.
"""

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

#: Session key holding when (Unix seconds) the session was last saved for activity.
SEEN_KEY = "console_seen"
#: Seconds between two saves of one session for activity alone (less for very short idle limits).
REFRESH_SECONDS = 60


def refresh_seconds():
    """A minute, or a tenth of the idle limit when that is shorter: a 1-minute limit still moves with use."""

    return min(REFRESH_SECONDS, max(1, settings.SESSION_COOKIE_AGE // 10))


def now():
    return int(timezone.now().timestamp())


def mark_seen(sender, request, user, **kwargs):
    """``user_logged_in`` receiver: a new login is activity, saved with the login itself."""
    if getattr(request, "session", None) is not None:
        request.session[SEEN_KEY] = now()


class IdleSessionMiddleware:
    """Marks a signed-in session as used when its last save is older than a minute; ``SessionMiddleware`` saves it.

    Goes after ``SessionMiddleware``.  Only a session the view already read is looked at, and not after a server
    error, so this adds no query and no failure of its own (a database outage stays the outage page).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.accessed and response.status_code < 500 and SESSION_KEY in session:
            if now() - session.get(SEEN_KEY, 0) >= refresh_seconds():
                session[SEEN_KEY] = now()
        return response
