"""Concurrent changes on PostgreSQL, made deterministic: the first change is made and held uncommitted; the second
runs in another thread (its own app context, connection and transaction) until it either finishes or waits on a
lock, and only then does the first commit. Without the lock the second would finish on counts or rows read before
the first was written; with it, it waits and then sees the first."""

import threading
import time

import pytest
from sqlalchemy import func, select, text

from app.accounts import services as accounts
from app.accounts.models import ROLE_MEMBER, ROLE_OWNER, Account, User
from app.extensions import db
from app.mail.models import MailMessage
from app.people import invitations
from app.people import services as people
from app.sessions.devices import RequestMeta
from tests import factories

WAIT_SECONDS = 60  # a bound for a loaded machine, never reached when the code is right
LOCK_WAITS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def second_while_first_held(app, first, second) -> str:
    """Run first() in this thread, uncommitted; second() in another; commit the first once the second is done or
    blocked on a lock. Returns the second's outcome: "ok" or its error's class name."""
    outcome: list[str] = []

    def run_second():
        with app.app_context():
            try:
                second()
                db.session.commit()
                outcome.append("ok")
            except Exception as error:  # the outcome is what the test asserts
                db.session.rollback()
                outcome.append(type(error).__name__)

    with app.app_context():
        first()
        thread = threading.Thread(target=run_second)
        thread.start()
        try:
            # Autocommit: PostgreSQL keeps one snapshot of pg_stat_activity per transaction, so a watcher inside one
            # would never see the second change start waiting if it first looked before the second got there.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as observer:
                deadline = time.monotonic() + WAIT_SECONDS
                while thread.is_alive() and not observer.execute(LOCK_WAITS).scalar_one():
                    assert time.monotonic() < deadline, "the second change neither finished nor waited on a lock"
                    time.sleep(0.005)  # waiting for another thread to reach a lock, not standing in for time
        except BaseException:
            db.session.rollback()  # never leave the first change holding its locks: teardown would wait on them
            raise
        db.session.commit()
    thread.join(timeout=WAIT_SECONDS)
    assert not thread.is_alive()
    return outcome[0]


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        factories.account_with_users()
    return app


def user(email: str) -> User:
    found = User.by_email(email)
    assert found is not None
    return found


@pytest.fixture
def two_owners(app, clock):
    """Ada and Grace, both owners who can sign in."""
    with app.app_context():
        user(factories.MEMBER_EMAIL).role = ROLE_OWNER
        db.session.commit()


def demote(owner_email: str, person_email: str, clock):
    return lambda: people.change_role(user(owner_email), user(person_email), ROLE_MEMBER, clock.now(), None)


ADA, GRACE = factories.OWNER_EMAIL, factories.MEMBER_EMAIL


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "second",
    [
        pytest.param(lambda clock: demote(GRACE, ADA, clock), id="demote-the-other"),
        pytest.param(lambda clock: lambda: accounts.disable_user(user(ADA), clock.now()), id="disable-the-other"),
        pytest.param(lambda clock: lambda: accounts.delete_user(user(ADA), clock.now()), id="remove-the-other"),
        pytest.param(
            lambda clock: lambda: people.disable(user(GRACE), user(ADA), clock.now(), None), id="page-disable"
        ),
    ],
)
def test_two_owners_removing_each_other_at_once_leave_one_owner(app, two_owners, clock, second):
    """Ada demotes Grace while Grace demotes (or disables, or removes) Ada: each alone is allowed, both would leave
    nobody who can run the account. The account's lock makes the second count after the first is written."""
    assert second_while_first_held(app, demote(ADA, GRACE, clock), second(clock)) == "AccountError"
    with app.app_context():
        owners = db.session.scalars(select(User.email).where(User.role == ROLE_OWNER, User.disabled_at.is_(None))).all()
        assert owners == [ADA]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_acceptances_of_one_link_at_once_make_one_person(app, clock):
    with app.test_request_context():
        ada = user(ADA)
        account_id = ada.account_id
        invitations.invite(ada, "lin@example.test", ROLE_MEMBER, clock.now(), None)
        db.session.commit()
        body = db.session.scalars(select(MailMessage.text_body)).one()
    token = body.split("/invitation/", 1)[1].split()[0]
    meta = RequestMeta(ip="192.0.2.1", user_agent="test", device_id="d" * 43)

    def accept(name):
        return lambda: invitations.accept(token, name, "a passphrase of lin's own", meta, clock.now())

    assert second_while_first_held(app, accept("First"), accept("Second")) == "InvitationLinkInvalid"
    with app.app_context():
        assert db.session.scalars(select(User.name).where(User.email == "lin@example.test")).all() == ["First"]
        assert db.session.scalar(select(func.count()).select_from(User)) == 3
        assert db.session.get(Account, account_id) is not None
