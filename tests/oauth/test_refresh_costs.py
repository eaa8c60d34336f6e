"""What one refresh-token rotation costs (issue 13), counted, never timed: SQL statements, COMMITs and Redis round
trips at /oauth/token, on SQLite and PostgreSQL, with and without Redis.

Before issue 13 a refresh ran seven statements after the client lookup on PostgreSQL (SET LOCAL lock_timeout, the
token SELECT … FOR UPDATE, its grant, the grant's portal session, the successor's INSERT, the compare-and-set UPDATE
and the grant's last_refreshed_at), and the limit on failed client authentication made two Redis round trips on
success (charge, then give back). Now: one joined read, then the writes (PostgreSQL: the lock timeout and one
statement; SQLite: the compare-and-set, the successor and its link); the grant's last refresh at most once a minute;
no Redis round trip once a success has kept its hit for the next attempt, and one for an attempt that finds none
kept (the charge, carrying what earlier successes give back)."""

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.extensions import db
from app.oauth.models import OAuthGrant
from tests.conftest import CACHE_KINDS, app_with_cache
from tests.oauth.conftest import Flow
from tests.request_costs import redis_round_trips

CLIENT_LOOKUP = "FROM oauth_clients"  # client authentication's, counted apart (it may come from a cache)


@pytest.fixture(params=CACHE_KINDS)
def app(request, make_app):
    return app_with_cache(request, make_app)


class Statements:
    """Every statement the app's engine runs (its first word, the client lookup apart), and its COMMITs."""

    def __init__(self):
        self.statements: list[str] = []
        self.client_lookups = 0
        self.commits = 0


def counted(app, call):
    counted = Statements()

    def statement(_conn, _cursor, text, *_args):
        if CLIENT_LOOKUP in text and text.lstrip().upper().startswith("SELECT"):
            counted.client_lookups += 1
        else:
            counted.statements.append(text.split(None, 1)[0].upper())

    def commit(_conn):
        counted.commits += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        with redis_round_trips() as redis:
            result = call()
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    return result, counted, redis.round_trips


def sqlite(app) -> bool:
    return app.config["DATABASE_URL"].startswith("sqlite")


def rotation(app, *, grant_noted: bool = False) -> list[str]:
    """The fast path: one joined read, then the writes. PostgreSQL: SET LOCAL lock_timeout, then one statement
    (WITH the compare-and-set, and the grant's last refresh when due, INSERT the successor). SQLite, in an immediate
    transaction: the compare-and-set UPDATE, the successor's INSERT, the UPDATE linking it (and the grant's UPDATE
    when due)."""
    if not sqlite(app):
        return ["SELECT", "SET", "WITH"]
    return ["SELECT", "BEGIN", "UPDATE", "INSERT", "UPDATE"] + (["UPDATE"] if grant_noted else [])


def last_refreshed_at(app):
    with app.app_context():
        return db.session.scalar(select(OAuthGrant.last_refreshed_at))


@pytest.fixture
def chain(app, owner, rp):
    """A flow and a refresh token whose grant was refreshed just now (the clock is frozen)."""
    flow = Flow(app, rp).sign_in()
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"])
    assert second.status_code == 200
    return flow, second.json["refresh_token"]


def advance(app, clock, seconds: int) -> None:
    """Move the clock, then let the process read its signing keys again (at most every 5 s: app.oauth.keys)."""
    clock.advance(seconds=seconds)
    assert app.test_client().get("/oauth/jwks").status_code == 200


def test_a_refresh_reads_once_and_writes_three_statements_in_one_commit(app, chain, clock):
    flow, token = chain
    advance(app, clock, 30)  # the grant's last refresh was written 30 s ago: not again within the minute
    response, sql, redis_round_trips = counted(app, lambda: flow.refresh(token))
    assert response.status_code == 200
    assert sql.statements == rotation(app)
    assert sql.client_lookups <= 1 and sql.commits == 1
    assert last_refreshed_at(app) == clock.now() - timedelta(seconds=30)
    assert redis_round_trips == 0  # the limit's hit is the one the last success kept (app.security.token_limit)


def test_the_grants_last_refresh_is_written_once_a_minute(app, chain, clock):
    flow, token = chain
    advance(app, clock, 61)
    response, sql, _ = counted(app, lambda: flow.refresh(token))
    assert response.status_code == 200
    assert sql.statements == rotation(app, grant_noted=True)
    assert last_refreshed_at(app) == clock.now()


def test_a_failed_client_authentication_uses_up_the_kept_hit_then_costs_one_round_trip(app, chain):
    flow, token = chain
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": flow.rp.client_id,
            "client_secret": "wrong"}  # fmt: skip
    round_trips = []
    for _ in range(2):
        response, sql, redis_round_trips = counted(app, lambda: app.test_client().post("/oauth/token", data=form))
        assert response.status_code == 401
        assert sql.statements == [] and sql.commits <= 1
        round_trips.append(redis_round_trips)
    assert round_trips == ([0, 1] if app.config["REDIS_URL"] else [0, 0])
