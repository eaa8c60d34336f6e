"""Sessions announce their end through the session_ended signal; OAuth revokes exactly that session's grants and
records the reason it was given (DESIGN §1, §2)."""

import pytest
import sqlalchemy as sa

from app.accounts.services import REASON_PASSWORD_CHANGED
from app.extensions import db
from app.oauth.grants import on_sessions_ended
from app.sessions import services as sessions
from app.sessions.models import UserSession
from app.sessions.revocation import REASON_DEVICE, REASON_OTHER_DEVICES, REASON_OWNER
from app.sessions.signals import session_ended
from tests.conftest import Auth
from tests.oauth.conftest import Flow

SESSION_REASONS = [
    sessions.REASON_SIGN_OUT,
    sessions.REASON_REPLACED,
    sessions.REASON_IDLE,
    sessions.REASON_ABSOLUTE,
    sessions.REASON_USER_DISABLED,
    REASON_DEVICE,
    REASON_OTHER_DEVICES,
    REASON_OWNER,
    REASON_PASSWORD_CHANGED,
]


def rows(app, sql: str) -> list[tuple]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(sa.text(sql))]


def two_devices_with_grants(app, rp) -> tuple[Flow, Flow]:
    """The owner signed in on two devices, each with a grant (and a refresh token) for the same app."""
    laptop, phone = Flow(app, rp).sign_in(), Flow(app, rp).sign_in()
    laptop.tokens(device_id="laptop")
    phone.tokens(device_id="phone")
    return laptop, phone


def grant_reasons(app) -> dict[str, str | None]:
    return dict(rows(app, "SELECT device_id, revoked_reason FROM oauth_grants"))


def refresh_reasons(app) -> dict[str, str | None]:
    sql = "SELECT g.device_id, r.revoked_reason FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id"
    return dict(rows(app, sql))


@pytest.mark.parametrize("reason", SESSION_REASONS)
def test_ending_a_session_revokes_exactly_its_grants_with_its_reason(app, owner, rp, clock, reason):
    two_devices_with_grants(app, rp)
    [(laptop_session,)] = rows(app, "SELECT issuer_session_id FROM oauth_grants WHERE device_id = 'laptop'")
    with app.app_context():
        sessions.end_sessions(UserSession.id == laptop_session, reason=reason, now=clock.now())
        db.session.commit()
    assert grant_reasons(app) == {"laptop": reason, "phone": None}
    assert refresh_reasons(app) == {"laptop": reason, "phone": None}


def test_signing_out_over_http_records_sign_out_on_that_devices_grant(app, owner, rp):
    laptop, _phone = two_devices_with_grants(app, rp)
    assert Auth(laptop.browser).logout().status_code in (302, 303)
    assert grant_reasons(app) == {"laptop": sessions.REASON_SIGN_OUT, "phone": None}


def test_every_app_subscribes_once(make_app):
    first, second = make_app(), make_app()
    make_app()  # a third app built in between changes neither
    for app in (first, second):
        assert list(session_ended.receivers_for(app)) == [on_sessions_ended]
