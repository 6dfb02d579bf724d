"""The private names of pymysql that the console uses, each behind a small function of ours."""

from pymysql.connections import MySQLResult
from pymysql.cursors import Cursor

from admin_site.adapters import Private

#: Checked against the installed version by tests/test_adapters.py.
PRIVATE_NAMES = [
    # --- exports ---
    Private("pymysql.cursors:Cursor", "_result", sample=lambda: Cursor(None)),
    Private("pymysql.connections:MySQLResult", "unbuffered_active", sample=lambda: MySQLResult(None)),
]


# --- exports ---


def forget_unread_rows(cursor):
    """Make an unbuffered cursor drop the rows it has not read, instead of reading them when closed or collected.

    ``SSCursor.close()`` (also run when the cursor is collected) and the
    result's finaliser read every remaining row off the wire before they let
    go: minutes for an abandoned download of a large table.  Call this, then
    close the connection: the rows are dropped with the socket and the server
    stops the query.  PyMySQL has no public way to say so.
    """
    result = cursor._result
    if result is not None:
        result.unbuffered_active = False
    cursor.connection = None
