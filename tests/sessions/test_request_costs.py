"""What a signed-in request costs once its session is cached (issue 13), counted, never timed: no SQL statement, no
COMMIT, and the cookie's signature checked once per process, not on every request."""

from datetime import timedelta

import pytest
from itsdangerous import URLSafeSerializer

from app.sessions.codec import CookieExpired, CookieInvalid, SessionHandle, SignedCookieStore
from tests.conftest import CACHE_KINDS, Auth, app_with_cache
from tests.request_costs import sql_statements
from tests.sessions.test_codec import KEY, NOW, flip, handle

STATUS = "/session/status"


@pytest.fixture(params=CACHE_KINDS)
def app(request, make_app):
    return app_with_cache(request, make_app)


def test_a_status_check_on_a_cached_session_makes_no_sql_statement(app, owner):
    browser = app.test_client()
    Auth(browser).login()
    assert browser.get(STATUS).status_code == 200  # cached now
    with sql_statements(app) as sql:
        for _ in range(5):
            assert browser.get(STATUS).status_code == 200
    assert (sql.statements, sql.commits) == ([], 0)


class CountingSerializer(URLSafeSerializer):
    checked = 0

    def loads(self, *args, **kwargs):
        CountingSerializer.checked += 1
        return super().loads(*args, **kwargs)


def test_a_cookie_signature_is_checked_once_per_process(monkeypatch):
    monkeypatch.setattr("app.sessions.codec.URLSafeSerializer", CountingSerializer)
    store = SignedCookieStore(KEY)
    value = store.encode(handle())
    CountingSerializer.checked = 0
    for _ in range(5):
        assert store.decode(value, NOW) == handle()
    assert CountingSerializer.checked == 1


def test_a_cookie_verified_before_still_expires_and_its_altered_copies_still_fail():
    store = SignedCookieStore(KEY)
    value = store.encode(handle(expires_at=NOW + timedelta(minutes=1)))
    assert store.decode(value, NOW).public_id == handle().public_id
    with pytest.raises(CookieExpired):
        store.decode(value, NOW + timedelta(minutes=2))
    for index in (3, len(value) - 2):
        with pytest.raises(CookieInvalid):
            store.decode(flip(value, index), NOW)
    assert isinstance(store.decode(value, NOW), SessionHandle)


def test_a_cached_session_state_is_parsed_once_per_process():
    from datetime import UTC, datetime

    from app.sessions.services import ActiveSession

    moment = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    raw = ActiveSession(1, "pub", 7, 30, moment, moment, moment, moment).dumps()
    assert ActiveSession.loads(raw) is ActiveSession.loads(bytes(raw))  # every signed-in request reads one
