"""While the account requires two-step verification (DESIGN §9, issue 11 item 5), a person's last second factor cannot
be removed, neither the authenticator app nor the last passkey; with another factor left, or without the
requirement, removing works as before. Services and the pages' forms, on SQLite and PostgreSQL."""

import json
import threading

import pytest
from flask import Flask

from app.accounts.models import Account, User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.factors import recovery, totp, two_step
from app.factors.errors import SecondStepRequired
from app.passkeys import enrolment
from app.passkeys import services as passkeys
from app.passkeys.errors import PasskeyNotFound
from app.passkeys.models import PasskeyCredential
from tests import factories
from tests.conftest import Auth, csrf_token_from
from tests.factories import OWNER_EMAIL
from tests.factors.conftest import app_code, enrolled
from tests.passkeys.conftest import ORIGIN
from tests.passkeys.soft_authenticator import SoftAuthenticator


@pytest.fixture
def ctx(web_app):
    with web_app.app_context():
        yield web_app


def owner() -> User:
    found = User.by_email(OWNER_EMAIL)
    assert found is not None
    return found


def require(value: bool = True) -> None:
    db.session.get(Account, owner().account_id).two_step_required = value
    db.session.commit()


def with_passkey(user: User, now) -> PasskeyCredential:
    handle, options = passkeys.registration_options(user, now)
    response = json.dumps(SoftAuthenticator().create(options, ORIGIN))
    added = enrolment.add(user, handle, response, "Chrome on macOS", now)
    db.session.commit()
    return added.passkey


def removals() -> list[AuditEvent]:
    return AuditEvent.tagged(str(EventTag.FACTOR_REMOVE))


def test_the_authenticator_app_is_kept_when_it_is_the_last_factor(ctx, clock):
    user = owner()
    enrolled(user, clock.now())
    recovery.generate(user, clock.now())
    require()
    with pytest.raises(SecondStepRequired):
        two_step.turn_off_authenticator(user, clock.now())
    db.session.commit()
    assert totp.is_enabled(user) and recovery.remaining(user) == 10 and removals() == []


def test_the_authenticator_app_goes_when_a_passkey_stays(ctx, clock):
    user = owner()
    enrolled(user, clock.now())
    with_passkey(user, clock.now())
    require()
    assert two_step.turn_off_authenticator(user, clock.now()) is False
    assert not totp.is_enabled(user) and recovery.remaining(user) == 10


def test_without_the_requirement_the_last_factor_goes_as_before(ctx, clock):
    user = owner()
    enrolled(user, clock.now())
    assert two_step.turn_off_authenticator(user, clock.now()) is True


def test_the_last_passkey_is_kept_but_not_the_one_before_it(ctx, clock):
    user = owner()
    first, second = with_passkey(user, clock.now()), with_passkey(user, clock.now())
    require()
    assert enrolment.remove(user, first.public_id, clock.now()) is False
    with pytest.raises(SecondStepRequired):
        enrolment.remove(user, second.public_id, clock.now())
    db.session.commit()
    assert [p.public_id for p in passkeys.list_for(user)] == [second.public_id]
    assert recovery.remaining(user) == 10 and len(removals()) == 1


def test_the_last_passkey_goes_when_the_authenticator_app_stays(ctx, clock):
    user = owner()
    passkey = with_passkey(user, clock.now())
    enrolled(user, clock.now())
    require()
    assert enrolment.remove(user, passkey.public_id, clock.now()) is False
    assert passkeys.list_for(user) == []


@pytest.mark.parametrize("public_id", ["x" * 22, "", None, 7], ids=["unknown", "empty", "none", "number"])
def test_an_unknown_passkey_is_not_found_whatever_the_requirement(ctx, clock, public_id):
    user = owner()
    with_passkey(user, clock.now())
    require()
    with pytest.raises(PasskeyNotFound):
        enrolment.remove(user, public_id, clock.now())


# --- the page's forms ---


def signed_in_with_both_steps(app: Flask, clock):
    """The owner with an authenticator app, signed in with its code (a fresh sign-in: removal needs one)."""
    with app.app_context():
        setup = enrolled(owner(), clock.now())
    client = app.test_client()
    Auth(client).login()
    page = client.get("/login/verify")
    client.post("/login/verify", data={"code": app_code(setup, clock.now()), "csrf_token": csrf_token_from(page.text)})
    return client


def test_the_page_says_the_account_requires_it_and_refuses_turning_off_the_last_factor(web_app, clock):
    client = signed_in_with_both_steps(web_app, clock)
    with web_app.app_context():
        require()
    page = client.get("/account/two-step").text
    assert "Your account requires two-step verification." in page
    assert "You can add and remove second steps, but not the last one." in page
    token = csrf_token_from(page)
    refused = client.post("/account/two-step/authenticator/remove", data={"csrf_token": token})
    assert refused.status_code == 303 and refused.headers["Location"] == "/account/two-step"
    assert SecondStepRequired.message in client.get("/account/two-step").text.replace("&#39;", "'")
    with web_app.app_context():
        assert totp.is_enabled(owner())


def test_the_passkey_form_refuses_removing_the_last_one(web_app, clock):
    client = signed_in_with_both_steps(web_app, clock)
    with web_app.app_context():
        public_id = with_passkey(owner(), clock.now()).public_id
        totp.remove(owner(), clock.now())
        require()
    token = csrf_token_from(client.get("/account/two-step").text)
    refused = client.post(f"/account/passkeys/{public_id}/remove", data={"csrf_token": token})
    assert refused.status_code == 303 and refused.headers["Location"] == "/account/two-step"
    assert SecondStepRequired.message in client.get("/account/two-step").text
    with web_app.app_context():
        assert len(passkeys.list_for(owner())) == 1


def test_without_the_requirement_the_page_says_nothing_of_it(web_app, clock):
    client = signed_in_with_both_steps(web_app, clock)
    assert "requires two-step verification" not in client.get("/account/two-step").text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_removing_the_last_two_factors_at_once_keeps_one(make_app, clock):
    """Two requests at the same moment, one removing the authenticator app, the other the only passkey: one of
    them is refused, whichever counted second (the user's row is locked before the factors are counted)."""
    app = make_app(ISSUER=ORIGIN)
    with app.app_context():
        factories.account_with_users()
        user = owner()
        enrolled(user, clock.now())
        passkey_id = with_passkey(user, clock.now()).public_id
        require()
    removals_at_once = [
        lambda user: two_step.turn_off_authenticator(user, clock.now()),
        lambda user: enrolment.remove(user, passkey_id, clock.now()),
    ]
    barrier, outcomes = threading.Barrier(len(removals_at_once)), []

    def worker(remove):
        with app.app_context():
            user = owner()
            barrier.wait()
            try:
                remove(user)
                outcomes.append("ok")
            except SecondStepRequired:
                outcomes.append("refused")
            db.session.commit()

    pool = [threading.Thread(target=worker, args=(remove,)) for remove in removals_at_once]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["ok", "refused"]
    with app.app_context():
        assert two_step.overview(owner()).has_second_factor
