"""Refresh-token rotation: successors, grace window, reuse = theft, never two live tokens (catalogue #26-#31)."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.oauth.models import OAuthGrant, RefreshToken
from tests.oauth.conftest import Flow

INVARIANT = """
SELECT chain_id, count(*) FROM oauth_refresh_tokens
WHERE rotated_to IS NULL AND revoked_at IS NULL GROUP BY chain_id HAVING count(*) > 1
"""


def fresh_connection_rows(app, sql: str, **params) -> list:
    """Read through a brand-new engine: a rolled-back revocation cannot hide from it."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql), params).all()
    finally:
        engine.dispose()


def test_rotation_marks_the_predecessor_and_keeps_chain_and_grant(app, flow):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json
    with app.app_context():
        rows = db.session.scalars(sa.select(RefreshToken).order_by(RefreshToken.id)).all()
        assert len(rows) == 2
        assert rows[0].rotated_to == rows[1].id
        assert rows[0].chain_id == rows[1].chain_id and rows[0].grant_id == rows[1].grant_id
    assert second["scope"] == first["scope"]
    assert "id_token" in second


def test_scope_can_narrow_but_never_widen(flow):
    first = flow.tokens()
    narrowed = flow.refresh(first["refresh_token"], scope="openid").json
    assert narrowed["scope"] == "openid"
    widened = flow.refresh(narrowed["refresh_token"], scope="openid email")
    assert widened.status_code == 400 and widened.json["error"] == "invalid_scope"


def test_reuse_outside_grace_revokes_chain_and_grant_and_it_stays_revoked(app, flow, clock):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json
    clock.advance(seconds=6)  # past the 5 s grace window
    reuse = flow.refresh(first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json["error"] == "invalid_grant"
    assert flow.refresh(second["refresh_token"]).json["error"] == "invalid_grant"
    assert flow.introspect(second["access_token"]) == {"active": False}
    live = fresh_connection_rows(app, "SELECT count(*) FROM oauth_refresh_tokens WHERE revoked_at IS NULL")
    grants = fresh_connection_rows(app, "SELECT revoked_reason FROM oauth_grants")
    assert live == [(0,)] and grants == [("refresh_token_reuse",)]
    events = fresh_connection_rows(app, "SELECT details FROM audit_events WHERE tag = 'oauth:refresh_token:reuse'")
    assert len(events) == 1
    assert first["refresh_token"] not in str(events) and second["refresh_token"] not in str(events)


def test_immediate_predecessor_inside_grace_gets_the_same_successor(app, flow, clock):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json
    clock.advance(seconds=4)
    again = flow.refresh(first["refresh_token"])
    assert again.status_code == 200
    assert again.json["refresh_token"] == second["refresh_token"]  # byte-identical successor
    assert flow.refresh(second["refresh_token"]).status_code == 200  # the chain lives on


def test_an_older_ancestor_is_theft_even_inside_grace(app, flow, clock):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json
    third = flow.refresh(second["refresh_token"]).json
    assert flow.refresh(second["refresh_token"]).json["refresh_token"] == third["refresh_token"]
    ancestor = flow.refresh(first["refresh_token"])
    assert ancestor.status_code == 400
    assert flow.refresh(third["refresh_token"]).json["error"] == "invalid_grant"


def test_no_raw_token_is_stored(app, flow):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json
    dump = str(fresh_connection_rows(app, "SELECT * FROM oauth_refresh_tokens"))
    dump += str(fresh_connection_rows(app, "SELECT * FROM oauth_grants"))
    dump += str(fresh_connection_rows(app, "SELECT * FROM oauth_authorization_codes"))
    for value in (first["refresh_token"], second["refresh_token"], first["grant_token"]):
        assert value not in dump and value[4:] not in dump


def test_refresh_never_outlives_the_session(app, flow, clock):
    tokens = flow.tokens()
    with app.app_context():
        grant = db.session.scalar(sa.select(OAuthGrant))
        absolute = grant.issuer_session.absolute_expires_at
    for _ in range(20):
        clock.advance(minutes=25)
        flow.browser.get("/")  # the portal session stays active
        response = flow.refresh(tokens["refresh_token"])
        if response.status_code != 200:
            break
        tokens = response.json
        with app.app_context():
            latest = db.session.scalar(sa.select(RefreshToken).order_by(RefreshToken.id.desc()))
            assert latest.expires_at <= absolute
    clock.set(absolute + timedelta(seconds=1))
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"


def test_another_clients_refresh_token_is_refused_and_still_works(app, flow, make_client):
    tokens = flow.tokens()
    other = make_client(first_party=True)
    stolen = Flow(app, other).token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert stolen.status_code == 400 and stolen.json["error"] == "invalid_grant"
    assert flow.refresh(tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize("field", ["access_token", "id_token", "grant_token"])
def test_other_token_types_are_not_refresh_tokens(flow, field):
    tokens = flow.tokens()
    assert flow.refresh(tokens[field]).json["error"] == "invalid_grant"


def test_signing_the_portal_session_out_stops_refreshes(app, flow):
    tokens = flow.tokens()
    from tests.conftest import Auth

    Auth(flow.browser).logout()
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert flow.introspect(tokens["access_token"]) == {"active": False}


def test_password_change_stops_refreshes_from_other_devices(app, flow, owner):
    tokens = flow.tokens()
    from tests.accounts.test_password import change
    from tests.conftest import Auth

    me = app.test_client()
    Auth(me).login()
    assert change(me).status_code == 303
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"


def test_idle_expiry_of_the_portal_session_stops_refreshes(app, flow, clock):
    tokens = flow.tokens()
    clock.advance(minutes=31)
    flow.browser.get("/")  # the portal notices the idle expiry and ends the session (and its grants)
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"


def test_grants_of_other_devices_stay_active(app, owner, rp):
    laptop, phone = Flow(app, rp).sign_in(), Flow(app, rp).sign_in()
    laptop_tokens, phone_tokens = laptop.tokens(), phone.tokens()
    from tests.conftest import Auth

    Auth(laptop.browser).logout()
    assert laptop.refresh(laptop_tokens["refresh_token"]).status_code == 400
    assert phone.refresh(phone_tokens["refresh_token"]).status_code == 200


def race(flow, refresh_token: str, threads: int) -> list:
    barrier = threading.Barrier(threads)
    results = [None] * threads

    def worker(index):
        barrier.wait()
        response = flow.refresh(refresh_token)
        results[index] = (response.status_code, response.json.get("refresh_token"))

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    return results


def racing_flow(app, clock) -> Flow:
    from app.oauth.clients import register_client
    from tests import factories
    from tests.oauth.conftest import Client

    with app.app_context():
        factories.account_with_users()
        registered = register_client("Racer", ["https://app.test/cb"], clock.now(), first_party=True)
        db.session.commit()
        client = Client(registered.client.client_id, registered.secret)
    return Flow(app, client).sign_in()


# Each thread runs a request on its own app context, so its own database connection; on PostgreSQL the
# row lock serialises them, on SQLite the immediate transaction does (catalogue #30).
@pytest.mark.parametrize("threads", [2, 5, 20])
def test_concurrent_refreshes_with_grace_all_get_the_same_successor(make_app, clock, threads):
    flow = racing_flow(make_app(), clock)
    results = race(flow, flow.tokens()["refresh_token"], threads)
    assert {status for status, _ in results} == {200}
    assert len({value for _, value in results}) == 1
    assert fresh_connection_rows(flow.app, INVARIANT) == []


@pytest.mark.parametrize("threads", [2, 5, 20])
def test_concurrent_refreshes_without_grace_never_fork_the_chain(make_app, clock, threads):
    flow = racing_flow(make_app(REFRESH_GRACE_SECONDS=0), clock)
    results = race(flow, flow.tokens()["refresh_token"], threads)
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 1 and set(statuses) <= {200, 400}
    assert fresh_connection_rows(flow.app, INVARIANT) == []
    # D6: with no grace a duplicate cannot be told from theft, so the chain ends revoked.
    live = "SELECT count(*) FROM oauth_refresh_tokens WHERE revoked_at IS NULL"
    assert fresh_connection_rows(flow.app, live) == [(0,)]


def test_an_idle_portal_session_ends_at_the_next_refresh_without_the_browser(app, flow, clock):
    tokens = flow.tokens()
    clock.advance(minutes=31)  # the browser never comes back; the client app refreshes
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    live = fresh_connection_rows(app, "SELECT revoked_reason FROM user_sessions")
    assert live == [("idle_timeout",)]


def test_refreshing_is_not_portal_activity(app, flow, clock):
    tokens = flow.tokens()
    clock.advance(minutes=25)
    tokens = flow.refresh(tokens["refresh_token"]).json
    clock.advance(minutes=6)  # 31 min since the browser was last used
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert flow.browser.get("/").headers["Location"].startswith("/login?reason=session_expired")


@pytest.mark.parametrize("threads", [10])
def test_racing_redemptions_of_one_code_issue_once_and_revoke(make_app, clock, threads):
    flow = racing_flow(make_app(), clock)
    code, verifier = flow.code()
    barrier, statuses = threading.Barrier(threads), []

    def worker():
        barrier.wait()
        statuses.append(flow.redeem(code, verifier).status_code)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * (threads - 1)
    # catalogue #16: the losers are replays, so what the winner got is revoked too.
    assert fresh_connection_rows(flow.app, "SELECT revoked_reason FROM oauth_grants") == [("code_replay",)]


def test_concurrent_code_exchanges_on_one_grant_all_succeed(make_app, clock):
    flow = racing_flow(make_app(), clock)
    codes = [flow.code() for _ in range(8)]  # one browser, one app: one grant, eight codes
    barrier, statuses = threading.Barrier(len(codes)), []

    def worker(code, verifier):
        barrier.wait()
        statuses.append(flow.redeem(code, verifier).status_code)

    pool = [threading.Thread(target=worker, args=pair) for pair in codes]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert statuses == [200] * len(codes)  # no deadlock (PostgreSQL) and no "database is locked" (SQLite)


@pytest.mark.parametrize("threads", [8])
def test_simultaneous_first_authorizations_from_one_device_share_one_grant(make_app, clock, threads):
    """DESIGN §5: one grant per (user, client, approving session, device), even when the first authorizations race."""
    flow = racing_flow(make_app(), clock)
    cookie = flow.browser.get_cookie("gh_session").value
    barrier, statuses = threading.Barrier(threads), []

    def worker():
        browser = flow.app.test_client()
        browser.set_cookie("gh_session", cookie)
        query = {"response_type": "code", "client_id": flow.rp.client_id, "redirect_uri": flow.rp.redirect_uri,
                 "scope": "openid", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                 "code_challenge_method": "S256", "device_id": "racing-device"}  # fmt: skip
        barrier.wait()
        statuses.append(browser.get("/oauth/authorize", query_string=query).status_code)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert statuses == [302] * threads
    live = "SELECT count(*) FROM oauth_grants WHERE revoked_at IS NULL AND device_id = 'racing-device'"
    assert fresh_connection_rows(flow.app, live) == [(1,)]


class BetweenReadAndWrite:
    """Run `meanwhile` on another thread, to completion, just after this request's unlocked read of the token and
    before its rotation writes (SQLite: before it queues for the write lock; PostgreSQL: before the one statement
    that writes)."""

    def __init__(self, app, meanwhile):
        self.app, self.meanwhile, self.done = app, meanwhile, False
        with app.app_context():
            self.engine = db.engine

    def __enter__(self):
        sa.event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_exc):
        sa.event.remove(self.engine, "after_cursor_execute", self._after)

    def _after(self, _conn, _cursor, statement, *_args):
        if self.done or "AS token_id" not in statement:  # RefreshToken.live_for_rotation's read
            return
        self.done = True
        other = threading.Thread(target=self.meanwhile)
        other.start()
        other.join(timeout=30)


@pytest.mark.parametrize("grace", [5, 0])
def test_a_rotation_committed_between_the_read_and_the_compare_and_set_wins(make_app, clock, grace):
    flow = racing_flow(make_app(REFRESH_GRACE_SECONDS=grace), clock)
    token = flow.tokens()["refresh_token"]
    first = []
    with BetweenReadAndWrite(flow.app, lambda: first.append(flow.refresh(token))) as interleaved:
        second = flow.refresh(token)
    assert interleaved.done and first[0].status_code == 200
    if grace:  # the loser is a retry inside the window: the same successor, nothing new minted
        assert second.status_code == 200 and second.json["refresh_token"] == first[0].json["refresh_token"]
        assert fresh_connection_rows(flow.app, "SELECT count(*) FROM oauth_refresh_tokens") == [(2,)]
    else:  # without a window a second use cannot be told from theft
        assert second.status_code == 400 and second.json["error"] == "invalid_grant"
        live = "SELECT count(*) FROM oauth_refresh_tokens WHERE revoked_at IS NULL"
        assert fresh_connection_rows(flow.app, live) == [(0,)]
    assert fresh_connection_rows(flow.app, INVARIANT) == []


def test_a_revocation_committed_between_the_read_and_the_compare_and_set_wins(make_app, clock):
    flow = racing_flow(make_app(), clock)
    token = flow.tokens()["refresh_token"]
    from tests.conftest import Auth

    with BetweenReadAndWrite(flow.app, lambda: Auth(flow.browser).logout()) as interleaved:
        refreshed = flow.refresh(token)
    assert interleaved.done
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    live = "SELECT count(*) FROM oauth_refresh_tokens WHERE revoked_at IS NULL"
    assert fresh_connection_rows(flow.app, live) == [(0,)]
    assert fresh_connection_rows(flow.app, "SELECT count(*) FROM oauth_refresh_tokens") == [(1,)]  # none minted
