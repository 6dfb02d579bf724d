"""Read replicas of a panel's database: whether one is fit to serve, which one a read goes to, read-your-writes.

MariaDB replicates (GTID replication, ``deploy/README.md`` "Scaling out");
this module only chooses.  A read goes to a replica when the running view
allows it (``pinning.reading_replicas``: lists and exports), the replica is
healthy (replicating, at most ``CONSOLE_REPLICA_MAX_LAG`` seconds behind,
checked at most every ``CONSOLE_REPLICA_HEALTH_SECONDS`` and shared through
Django's cache), and it has applied this user's last write on that panel: the
primary's ``@@gtid_binlog_pos`` is kept in the session after a write, and the
replica is given ``CONSOLE_REPLICA_WAIT_SECONDS`` (``MASTER_GTID_WAIT``) to
reach it.  Otherwise the read goes to the panel's own database, the primary.
"""

import contextlib
import logging
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)

#: Session key: panel alias -> the primary's GTID position after this user's last write there.
SESSION_KEY = "console_replica_positions"
#: Statements that read (or only set up a session or a transaction); anything else is a write.
READING = ("SELECT", "SHOW", "SET", "SAVEPOINT", "RELEASE", "ROLLBACK", "EXPLAIN", "DESCRIBE")


def configured():
    """Panel alias -> its replica aliases (``settings.CONSOLE_REPLICAS``; none in a settings module without it)."""
    return getattr(settings, "CONSOLE_REPLICAS", {})


def replicas_of(alias):
    """The replica aliases of panel ``alias``, in configuration order."""
    return tuple(configured().get(alias, ()))


def primary_of(alias):
    """The panel alias a replica alias copies; any other alias is its own primary."""
    for primary, replicas in configured().items():
        if alias in replicas:
            return primary
    return alias


@dataclass(frozen=True)
class Health:
    ok: bool
    #: Seconds behind the primary, as the replica reports it; None when it cannot say.
    lag: float | None
    #: Why the replica is skipped ("" when it is used).
    why: str


def health_key(replica):
    return f"replica-health:{replica}"


def health(replica):
    """The replica's health, checked at most every ``CONSOLE_REPLICA_HEALTH_SECONDS`` (Django's cache)."""
    try:
        cached = cache.get(health_key(replica))
    except Exception:  # noqa: BLE001 - a cache server that is down costs the cache, not the page
        cached = None
    if cached is not None:
        return Health(*cached)
    found = check(replica)
    remember(replica, found)
    return found


def remember(replica, found):
    try:
        cache.set(health_key(replica), (found.ok, found.lag, found.why), settings.CONSOLE_REPLICA_HEALTH_SECONDS)
    except Exception:  # noqa: BLE001
        pass


def mark_failed(replica, error):
    """A replica that failed a read is skipped until its next check says otherwise."""
    connections[replica].close()
    found = Health(False, None, f"failed a read: {summary(error)}")
    logger.warning("Replica %s skipped: %s", replica, found.why)
    remember(replica, found)


def summary(error):
    """A short, secret-free description of a database error (MySQL's code and first words)."""
    text = " ".join(str(part) for part in getattr(error, "args", ()) if part is not None) or type(error).__name__
    return text[:120]


def check(replica):
    """Ask the replica itself: reachable, both replication threads running, and not too far behind."""
    connection = connections[replica]
    try:
        with connection.cursor() as cursor:
            if connection.vendor != "mysql":
                cursor.execute("SELECT 1")  # a test's stand-in (another SQLite file): reachable is healthy
                return Health(True, 0.0, "")
            cursor.execute("SHOW SLAVE STATUS")
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
    except DatabaseError as error:
        from admin_site.outages import is_unreachable

        connection.close()
        if is_unreachable(error):
            return Health(False, None, f"unreachable: {summary(error)}")
        # Most often the console's account lacks SLAVE MONITOR there (deploy/README.md "Scaling out").
        return Health(False, None, f"cannot read its replication status: {summary(error)}")
    if not rows:
        return Health(False, None, "not replicating (SHOW SLAVE STATUS is empty)")
    status = dict(zip(columns, rows[0], strict=True))
    lag = status.get("Seconds_Behind_Master")
    lag = None if lag is None else float(lag)
    io, sql = status.get("Slave_IO_Running"), status.get("Slave_SQL_Running")
    if io != "Yes" or sql != "Yes":
        return Health(False, lag, f"replication stopped (I/O thread: {io}, SQL thread: {sql})")
    if lag is None:
        return Health(False, None, "cannot say how far behind it is")
    if lag > settings.CONSOLE_REPLICA_MAX_LAG:
        return Health(False, lag, f"{lag:.0f} s behind (limit {settings.CONSOLE_REPLICA_MAX_LAG:.0f} s)")
    return Health(True, lag, "")


def states(alias):
    """(replica alias, host:port, health) for each replica of ``alias``: the console home's table."""
    found = []
    for replica in replicas_of(alias):
        config = connections.settings[replica]
        found.append((replica, f"{config.get('HOST') or 'localhost'}:{config.get('PORT') or 3306}", health(replica)))
    return found


def choose(alias, session=None):
    """A healthy replica of ``alias`` holding the session's last write there, else ``alias`` itself.

    One session keeps to one replica (by its key), so its reads never go back
    in time by moving to a replica further behind.
    """
    healthy = [replica for replica in replicas_of(alias) if health(replica).ok]
    if not healthy:
        return alias
    key = getattr(session, "session_key", None) or ""
    replica = healthy[zlib.crc32(key.encode()) % len(healthy)]
    position = (session.get(SESSION_KEY, {}) if session is not None else {}).get(alias)
    if position and not caught_up(replica, position):
        return alias
    return replica


def caught_up(replica, position):
    """Whether ``replica`` applies GTID ``position`` within ``CONSOLE_REPLICA_WAIT_SECONDS``."""
    connection = connections[replica]
    if connection.vendor != "mysql":
        return True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s)", [position, settings.CONSOLE_REPLICA_WAIT_SECONDS])
            (waited,) = cursor.fetchone()
    except DatabaseError as error:
        mark_failed(replica, error)
        return False
    return waited == 0


def positions(session):
    """The primaries' positions after this session's last writes: what a background job carries to the worker."""
    return dict(session.get(SESSION_KEY, {})) if session is not None else {}


def as_session(positions):
    """A stand-in for a session holding ``positions`` (the worker has no session of its own)."""
    return {SESSION_KEY: dict(positions)}


@contextlib.contextmanager
def remembering_writes(session):
    """Note which panels with replicas the block writes to; then keep each one's GTID position in ``session``."""
    primaries = [alias for alias, replicas in configured().items() if replicas] if session is not None else []
    if not primaries:
        yield
        return
    written = set()

    def noting(alias):
        def note(execute, sql, params, many, context):
            if not sql.lstrip()[:10].upper().startswith(READING):
                written.add(alias)
            return execute(sql, params, many, context)

        return note

    with contextlib.ExitStack() as stack:
        for alias in primaries:
            stack.enter_context(connections[alias].execute_wrapper(noting(alias)))
        try:
            yield
        finally:
            stack.close()
            if written:
                remember_positions(session, written)


def remember_positions(session, aliases):
    positions = dict(session.get(SESSION_KEY, {}))
    for alias in sorted(aliases):
        connection = connections[alias]
        if connection.vendor != "mysql":
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT @@gtid_binlog_pos")
                (position,) = cursor.fetchone()
        except DatabaseError:
            continue  # the write's own error is what the user sees; this read can only add noise
        if position:
            positions[alias] = position
    if positions != session.get(SESSION_KEY, {}):
        session[SESSION_KEY] = positions
