"""What one request costs in round trips, counted (never timed): Redis commands sent and SQL statements run.

Redis: every send of redis-py's connections (one command, or one pipeline, is one send and one round trip), from the
calling thread only, so a background thread of the app (the near cache's listener) is not counted against a request.
SQL: every statement the app's engine runs, and every COMMIT and ROLLBACK of its connections.
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from sqlalchemy import event

from app.extensions import db


@dataclass
class RedisCount:
    round_trips: int = 0


@contextmanager
def redis_round_trips():
    """Count the Redis round trips this thread makes inside the block."""
    counted = RedisCount()
    thread = threading.get_ident()
    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(connection, command, check_health=True):
        if threading.get_ident() == thread:
            counted.round_trips += 1
        return original(connection, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


@dataclass
class SQLCount:
    statements: list[str] = field(default_factory=list)  # the first word of each: SELECT, UPDATE, …
    commits: int = 0
    rollbacks: int = 0


@contextmanager
def sql_statements(app):
    """Count what the app's engine sends inside the block: statements, COMMITs and ROLLBACKs."""
    counted = SQLCount()

    def statement(_conn, _cursor, text, *_args):
        counted.statements.append(text.split(None, 1)[0].upper())

    def commit(_conn):
        counted.commits += 1

    def rollback(_conn):
        counted.rollbacks += 1

    with app.app_context():
        engine = db.engine
    listeners = (("before_cursor_execute", statement), ("commit", commit), ("rollback", rollback))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield counted
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)
