"""Two requests with one code at the same moment: exactly one passes (PostgreSQL, where requests really run side by
side; each thread has its own app context, so its own connection and transaction, committed as a view would)."""

import threading

import pytest

from app.accounts.models import User
from app.extensions import db
from app.factors import recovery, totp
from app.factors.errors import FactorError
from tests.factors.conftest import app_code, enrolled, user_rows

THREADS = 8
ROOMY_LIMIT = "100 per minute"  # every thread's guess is charged while in flight: room for all of them


def race(app, attempt) -> list[str]:
    """Run attempt(user) in THREADS threads released together; each outcome: "ok" or the error's class name."""
    barrier, outcomes = threading.Barrier(THREADS), []

    def worker():
        with app.app_context():
            user = db.session.get(User, user_rows()[0].id)
            barrier.wait()
            try:
                attempt(user)
                db.session.commit()
                outcomes.append("ok")
            except FactorError as error:
                db.session.commit()  # the view keeps the failure's audit event
                outcomes.append(type(error).__name__)

    pool = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    return sorted(outcomes)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_totp_code_sent_twice_at_once_passes_once(make_app, clock):
    app = make_app(SECOND_FACTOR_RATE_LIMIT=ROOMY_LIMIT)
    with app.app_context():
        enrolment = enrolled(user_rows()[0], clock.now())
    code = app_code(enrolment, clock.now())
    outcomes = race(app, lambda user: totp.verify(user, code, clock.now()))
    assert outcomes == ["CodeReused"] * (THREADS - 1) + ["ok"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_recovery_code_used_twice_at_once_works_once(make_app, clock):
    app = make_app(SECOND_FACTOR_RATE_LIMIT=ROOMY_LIMIT)
    with app.app_context():
        owner, _ = user_rows()
        code = recovery.generate(owner, clock.now())[0]
        db.session.commit()
    outcomes = race(app, lambda user: recovery.use(user, code, clock.now()))
    assert outcomes == ["CodeReused"] * (THREADS - 1) + ["ok"]
    with app.app_context():
        assert recovery.remaining(user_rows()[0]) == 9
