"""A reader that read the database before a change never puts the old state back in the cache (issue 9 security
review): invalidations write a short-lived stale marker, not a delete, that set-if-absent cannot replace; a stale marker
never replaces a tombstone, whatever order the outbox delivers in; and activity never writes an idle window computed
from a cached policy older than the row's."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.cache import Invalidation, cache
from app.extensions import db
from app.invalidation.models import CacheInvalidation
from app.invalidation.services import invalidate
from app.oauth.clients import CLIENT_CACHE_PREFIX
from app.sessions.models import UserSession
from app.sessions.services import CACHE_KEY_PREFIX, TOMBSTONE
from tests.client_api.test_internal_endpoints import verify
from tests.conftest import Auth, app_with_cache, csrf_token_from
from tests.factories import MEMBER_EMAIL
from tests.helpers import PORTAL_COOKIE, portal_cookie, sessions_of
from tests.oauth.conftest import flow, make_client, rp  # noqa: F401 (fixtures)

STRICT_IDLE = timedelta(minutes=15)


@pytest.fixture(params=["redis", "in-process"])
def instance(request, make_app):
    """Build instances on the same database, each with a cache of its own (empty, as after a flush)."""

    def build():
        return app_with_cache(request, make_app)

    return build


@pytest.fixture
def app(instance):
    return instance()


def signed_in(app, email=None):
    client = app.test_client()
    Auth(client).login(**({"email": email} if email else {}))
    assert client.get("/").status_code == 200  # its state is cached now
    return client


def session_key(app, user_id) -> str:
    [row] = sessions_of(app, user_id)
    return CACHE_KEY_PREFIX + row.public_id


def cached(app, key) -> bytes | None:
    with app.app_context():
        return cache().get(key)


def add(app, key, value) -> None:
    """What a reader that read the row before the change does last: set-if-absent its state."""
    with app.app_context():
        cache().add(key, value, 60)


def apply_strict_now(owner_client):
    token = csrf_token_from(owner_client.get("/account/security").text)
    data = {"csrf_token": token, "preset": "strict", "apply_now": "y"}
    assert owner_client.post("/account/security/policy", data=data).status_code in (200, 303)


def member_row(app, owner) -> UserSession:
    with app.app_context():
        rows = db.session.scalars(select(UserSession).where(UserSession.user_id == owner.member_id)).all()
        db.session.expunge_all()
        [row] = rows
        return row


def test_a_policy_applied_now_is_not_undone_by_a_reader_that_read_before_it(app, owner, clock):
    me, member = signed_in(app), signed_in(app, MEMBER_EMAIL)
    key = session_key(app, owner.member_id)
    stale = cached(app, key)
    apply_strict_now(me)
    add(app, key, stale)
    assert cached(app, key) is None  # still a miss: the next request reads the new windows from the row
    clock.advance(minutes=2)
    assert member.get("/").status_code == 200
    assert member_row(app, owner).idle_expires_at <= clock.now() + STRICT_IDLE
    clock.advance(minutes=20)
    assert member.get("/").headers["Location"].startswith("/login")


def test_activity_never_writes_a_window_from_a_cached_policy_older_than_the_row(app, owner, clock):
    me, member = signed_in(app), signed_in(app, MEMBER_EMAIL)
    key = session_key(app, owner.member_id)
    stale = cached(app, key)
    apply_strict_now(me)
    clock.advance(minutes=2)
    with app.app_context():  # however the old state got back into the cache
        cache().invalidate([Invalidation(key, stale, 60)])
    assert member.get("/").status_code == 200
    assert member_row(app, owner).idle_expires_at <= clock.now() + STRICT_IDLE
    assert cached(app, key) is None  # dropped: the next request uses the row
    clock.advance(minutes=20)
    assert member.get("/").headers["Location"].startswith("/login")


def test_a_replayed_marker_never_replaces_a_newer_tombstone(app, owner, clock):
    me, member = signed_in(app), signed_in(app, MEMBER_EMAIL)
    key = session_key(app, owner.member_id)
    valid = cached(app, key)
    with app.app_context():
        invalidate([Invalidation(key)])  # an older change (activity, a policy)
        db.session.commit()
    with app.app_context():  # a replayer reads it (Redis: from the outbox) before the revocation ...
        batch = [change for _, change in CacheInvalidation.pending(500)] or [Invalidation(key)]
    token = csrf_token_from(me.get("/account/security/revoke/others").text)
    me.post("/account/security/revoke/others", data={"csrf_token": token})  # the tombstone, delivered directly
    with app.app_context():
        cache().invalidate(batch)  # ... and then a replayer writes the older change it read before
        assert cache().get(key) == TOMBSTONE
    add(app, key, valid)  # a reader that read the row before the revocation
    assert member.get("/account/devices").headers["Location"].startswith("/login")


def test_a_revoked_session_read_from_the_database_leaves_a_tombstone(app, instance, owner):
    me, member = signed_in(app), signed_in(app, MEMBER_EMAIL)
    key = session_key(app, owner.member_id)
    cookie = portal_cookie(member)
    token = csrf_token_from(me.get("/account/security/revoke/others").text)
    me.post("/account/security/revoke/others", data={"csrf_token": token})
    other = instance()  # whose cache never saw the revocation
    replayed = other.test_client()
    replayed.set_cookie(PORTAL_COOKIE, cookie)
    assert replayed.get("/account/devices").headers["Location"].startswith("/login")
    assert cached(other, key) == TOMBSTONE  # the next request of this cookie is refused from the cache


def test_a_disabled_client_is_not_put_back_by_a_reader_that_read_it_before(app, rp, flow):  # noqa: F811
    grant = flow.tokens()["grant_token"]
    assert verify(app, rp, grant).status_code == 200
    key = CLIENT_CACHE_PREFIX + rp.client_id
    stale = cached(app, key)
    assert stale is not None
    assert app.test_cli_runner().invoke(args=["clients", "disable", rp.client_id]).exit_code == 0
    add(app, key, stale)
    assert verify(app, rp, grant).status_code == 401
