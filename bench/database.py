"""The bench's own PostgreSQL database and Redis database, created for the run and always emptied afterwards;
the processes whose CPU time they cost (see bench.cpu)."""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import redis
import sqlalchemy as sa

from bench import cpu
from bench.errors import BenchError

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Index 13 (issue 13), away from the tests' 0; the bench refuses a database that is not empty and empties its own.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
MAINTENANCE_DATABASE = "postgres"
CONNECT_TIMEOUT_SECONDS = 3
# Our backends, and the server's auxiliary processes (no database); pg_stat_activity lists both with their pid.
SERVER_PROCESSES = sa.text(
    "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (datname = :name OR datname IS NULL)"
)
# DESIGN §5: never two live (unrotated, unrevoked) refresh tokens in one chain (rotated_at marks a rotation).
DOUBLED_CHAINS = sa.text(
    "SELECT count(*) FROM (SELECT chain_id FROM oauth_refresh_tokens WHERE rotated_at IS NULL "
    "AND revoked_at IS NULL GROUP BY chain_id HAVING count(*) > 1) AS doubled"
)


@dataclass(frozen=True)
class Postgres:
    url: str  # the bench's own database (may carry a password: never printed whole)
    name: str
    description: str  # version, durability settings
    processes: cpu.PidLister | None  # None when the server is not a process on this machine


@dataclass(frozen=True)
class Redis:
    url: str
    description: str
    processes: cpu.PidLister | None


@contextlib.contextmanager
def private_postgres() -> Iterator[Postgres]:
    """A new database gatehouse_bench_<pid>, dropped afterwards.

    The server comes from BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local default; only its host, port
    and credentials are used, the database named there serves for CREATE and DROP.
    """
    raw = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL
    try:
        base = sa.make_url(raw).set(drivername="postgresql+psycopg")
    except sa.exc.ArgumentError as exc:
        raise BenchError(f"BENCH_DATABASE_URL / TEST_DATABASE_URL is not a database URL: {exc}") from exc
    admin = _admin_engine(base)
    name = f"gatehouse_bench_{os.getpid()}"
    try:
        with admin.connect() as monitor:
            _drop(monitor, name)
            monitor.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = base.set(database=name).render_as_string(hide_password=False)
            yield Postgres(url, name, _describe_postgres(monitor), _postgres_processes(monitor, name))
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError), admin.connect() as connection:
            _drop(connection, name)  # FORCE ends connections a stopped gunicorn may have left behind
        admin.dispose()


def _drop(connection: sa.Connection, name: str) -> None:
    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _admin_engine(base: sa.URL) -> sa.Engine:
    """An AUTOCOMMIT engine on the URL's database, else on `postgres`."""
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
    raise BenchError(
        f"PostgreSQL at {base.host}:{base.port or 5432} does not answer: the production configuration needs it "
        "(set BENCH_DATABASE_URL or TEST_DATABASE_URL to a server where the user may create databases)"
    )


def _describe_postgres(monitor: sa.Connection) -> str:
    version = monitor.execute(sa.text("SHOW server_version")).scalar_one()
    settings = [f"{name}={monitor.execute(sa.text(f'SHOW {name}')).scalar_one()}"
                for name in ("fsync", "synchronous_commit", "shared_buffers")]  # fmt: skip
    return f"PostgreSQL {version} ({', '.join(settings)})"


def _postgres_processes(monitor: sa.Connection, name: str) -> cpu.PidLister | None:
    """The postmaster (the monitor backend's parent) plus SERVER_PROCESSES, if the server runs on this machine."""
    backend = monitor.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    postmaster = cpu.parent_of(backend)
    if postmaster is None or cpu.command_name(postmaster) != "postgres":
        return None
    return lambda: {postmaster, *monitor.execute(SERVER_PROCESSES, {"name": name}).scalars()}


@contextlib.contextmanager
def private_redis() -> Iterator[Redis]:
    """The database BENCH_REDIS_URL names (else index 13 of the local Redis): it must be empty at the start, and is
    emptied at the end."""
    url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    connection = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    index = connection.connection_pool.connection_kwargs.get("db", 0)
    try:
        keys = connection.dbsize()
    except redis.RedisError as exc:
        raise BenchError(f"Redis ({_where(connection)}) does not answer: the production configuration needs it "
                         f"(set BENCH_REDIS_URL): {exc}") from exc  # fmt: skip
    if keys:
        raise BenchError(
            f"Redis database {index} at {_where(connection)} holds {keys} keys: the bench empties its database at the "
            "end, so it needs one nobody else uses. Set BENCH_REDIS_URL to another, or empty this one if a killed "
            "bench left them."
        )
    info = connection.info("server") | connection.info("persistence")
    pid = int(info["process_id"])
    aof, rdb = "on" if info["aof_enabled"] else "off", "on" if _config(connection, "save") else "off"
    description = f"Redis {info['redis_version']} (database {index}; append-only file {aof}, RDB snapshots {rdb})"
    local = cpu.command_name(pid).startswith("redis-server")
    try:
        yield Redis(url, description, (lambda: {pid}) if local else None)
    finally:
        with contextlib.suppress(redis.RedisError):
            connection.flushdb()
        connection.close()


def _where(connection: redis.Redis) -> str:
    kwargs = connection.connection_pool.connection_kwargs  # host and port only: the URL may carry a password
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def _config(connection: redis.Redis, name: str) -> str:
    try:
        return str(connection.config_get(name).get(name, ""))
    except redis.RedisError:  # CONFIG may be renamed or refused on a managed server
        return ""


def doubled_chains(url: str) -> int:
    """How many refresh-token chains hold more than one live token (DESIGN §5 says none may)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(DOUBLED_CHAINS).scalar_one()
    finally:
        engine.dispose()
