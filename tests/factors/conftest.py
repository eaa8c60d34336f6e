"""A signed-up user in an app context, and the codes their authenticator app would show."""

from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.extensions import db
from app.factors import totp
from tests import factories

STEP = timedelta(seconds=30)


@pytest.fixture
def user(app_ctx, owner) -> User:
    found = db.session.get(User, owner.owner_id)
    assert found is not None
    return found


def app_code(enrolment: totp.Enrolment, at: datetime) -> str:
    """What an authenticator app that scanned this enrolment shows at that moment (its own reading of the URI)."""
    return pyotp.parse_uri(enrolment.provisioning_uri).at(at)


def enrolled(user: User, now: datetime) -> totp.Enrolment:
    """An authenticator app set up and confirmed two steps before `now` (out of its skew window), committed."""
    enrolment = totp.begin_enrolment(user, now - 2 * STEP)
    totp.confirm_enrolment(user, app_code(enrolment, now - 2 * STEP), now - 2 * STEP)
    db.session.commit()
    return enrolment


def wrong_code(enrolment: totp.Enrolment, at: datetime) -> str:
    """Six digits that no step within the skew window of `at` shows."""
    shown = {app_code(enrolment, at + n * STEP) for n in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in shown)


def user_rows() -> tuple[User, User]:
    """The owner and the member of the example account, made on first use (for tests building their own apps)."""
    owner = User.by_email(factories.OWNER_EMAIL)
    if owner is None:
        factories.account_with_users()
        owner = User.by_email(factories.OWNER_EMAIL)
    member = User.by_email(factories.MEMBER_EMAIL)
    assert owner is not None and member is not None
    return owner, member


def audit_events() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
