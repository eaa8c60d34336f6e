"""A private PostgreSQL database for the OAuth measurements: created for the run, always dropped."""

import contextlib
import os
from collections.abc import Iterator

import sqlalchemy as sa

from bench.errors import BenchError

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MAINTENANCE_DATABASE = "postgres"
CONNECT_TIMEOUT_SECONDS = 3


@contextlib.contextmanager
def private_postgres() -> Iterator[str | None]:
    """Yield the URL of a new database gatehouse_bench_<pid>, or None when PostgreSQL cannot be reached.

    The server comes from BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local default; only its
    host, port and credentials are used, the database named there serves for CREATE and DROP.
    """
    raw = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_URL
    try:
        base = sa.make_url(raw).set(drivername="postgresql+psycopg")
    except sa.exc.ArgumentError as exc:
        raise BenchError(f"BENCH_DATABASE_URL / TEST_DATABASE_URL is not a database URL: {exc}") from exc
    admin = _admin_engine(base)
    if admin is None:
        yield None
        return
    name = f"gatehouse_bench_{os.getpid()}"
    try:
        _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE ends connections a stopped gunicorn may have left behind.
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def describe(url: str) -> str:
    """Host, port and database only: the URL may carry a password."""
    parts = sa.make_url(url)
    return f"postgresql at {parts.host}:{parts.port or 5432}/{parts.database}"


def _admin_engine(base: sa.URL) -> sa.Engine | None:
    """An AUTOCOMMIT engine on the URL's database, else on `postgres`; None if neither answers."""
    for database in dict.fromkeys([base.database or MAINTENANCE_DATABASE, MAINTENANCE_DATABASE]):
        engine = sa.create_engine(
            base.set(database=database),
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
            poolclass=sa.pool.NullPool,
        )
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return engine
        except sa.exc.OperationalError:
            engine.dispose()
    return None


def _execute(engine: sa.Engine, *statements: str) -> None:
    with engine.connect() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
