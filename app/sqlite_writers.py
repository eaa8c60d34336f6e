"""SQLite's immediate write transactions wait in line (the embedded configuration, issue 13).

SQLite has one write lock per database, and a writer that finds it taken polls: its busy handler sleeps 1, 2, 5, 10,
… up to 100 ms between tries, and a writer arriving meanwhile may take the lock first. With every worker thread of
every process rotating refresh tokens, a writer could lose that race for seconds (a p99 of 1.6 s, and a 503 after
the 5 s busy timeout, with 16 chains over 2 workers). So before BEGIN IMMEDIATE a writer takes an exclusive flock(2)
on a file beside the database: the kernel wakes the next waiter as soon as the holder's transaction ends (COMMIT,
ROLLBACK, or the connection's return to the pool), in this process and in every other one on the same file. SQLite's
own lock and busy timeout still guard everything (writers that do not queue here, other programs): the line only
decides who asks next.

Used by app.oauth.models' write transactions (the token endpoint's rotation, code exchange and the authorization's
grant lock), which are the ones that run back to back under load.
"""

import fcntl
import os

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import Pool

HELD_KEY = "gatehouse.sqlite_writer"  # in the pooled connection's info: the line's file descriptor, while held
LINE_SUFFIX = "-writers"  # beside the database file, as SQLite's own -wal and -shm files are


def enter(connection: Connection) -> None:
    """Wait for this connection's turn to write (an exclusive flock, held until its transaction ends)."""
    database = connection.engine.url.database
    if not database or database == ":memory:" or HELD_KEY in connection.info:
        return
    descriptor = os.open(database + LINE_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # blocks without the GIL until the holder leaves
    except BaseException:
        os.close(descriptor)
        raise
    connection.info[HELD_KEY] = descriptor


def _leave(info: dict) -> None:
    descriptor = info.pop(HELD_KEY, None)
    if descriptor is not None:
        os.close(descriptor)  # closing the file releases the flock


# The request's session returns its connection to the pool once its transaction has committed or rolled back (the
# engine's own commit event comes before the COMMIT, too early): the line moves on then, or when the connection dies.
@event.listens_for(Pool, "checkin")
def _returned(_dbapi_connection, record) -> None:
    _leave(record.info)


@event.listens_for(Pool, "invalidate")
def _invalidated(_dbapi_connection, record, _exception) -> None:
    _leave(record.info)
