"""Signing in with a passkey: with no e-mail or password (discoverable), or as the second step; refusals audited."""

import json
import threading

import pytest
import sqlalchemy as sa

from app.audit.tags import EventTag
from app.extensions import db
from app.passkeys import services
from app.passkeys.errors import CeremonyRefused, PasskeyNotFound
from app.passkeys.models import PasskeyCredential
from tests.passkeys.conftest import ORIGIN, events, portal_in
from tests.passkeys.soft_authenticator import SoftAuthenticator, b64url, from_b64url


@pytest.fixture
def registered(portal, authenticator):
    """The owner's passkey on `authenticator`, made a minute ago."""
    passkey = portal.register(portal.owner, authenticator)
    portal.clock.advance(minutes=1)
    return passkey


def test_discoverable_options_name_no_credential(portal, registered):
    _, options_json = services.authentication_options(portal.now())
    options = json.loads(options_json)
    assert options["rpId"] == "localhost"
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "preferred"
    assert options["timeout"] == 300_000


def test_a_passkey_signs_in_with_no_email_or_password(portal, authenticator, registered):
    assertion = portal.sign_in(authenticator)
    assert (assertion.user.id, assertion.user_verified) == (portal.owner.id, True)
    assert (assertion.passkey.public_id, assertion.passkey.sign_count) == (registered.public_id, 2)
    assert assertion.passkey.last_used_at == portal.now()
    db.session.commit()
    used = events(EventTag.FACTOR_USE)
    assert [(e.user_id, e.details) for e in used] == [(portal.owner.id, {"factor": "passkey",
        "passkey": registered.public_id, "step": "sign_in", "user_verified": True})]  # fmt: skip


def test_without_user_verification_the_caller_learns_it(portal, authenticator, registered):
    authenticator.user_verified = False
    assert portal.sign_in(authenticator).user_verified is False


def test_second_step_options_allow_only_the_users_passkeys(portal, authenticator, registered):
    portal.register(portal.member, SoftAuthenticator())
    _, options_json = services.authentication_options(portal.now(), portal.owner)
    allowed = json.loads(options_json)["allowCredentials"]
    assert allowed == [{"id": b64url(registered.credential_id), "type": "public-key",
                        "transports": ["hybrid", "internal"]}]  # fmt: skip


def test_a_passkey_is_a_second_step_after_the_password(portal, authenticator, registered):
    assertion = portal.sign_in(authenticator, portal.owner)
    assert (assertion.user.id, assertion.passkey.sign_count) == (portal.owner.id, 2)
    assert events(EventTag.FACTOR_USE)[-1].details["step"] == "second_step"


def test_no_second_step_options_for_a_user_without_passkeys(portal):
    with pytest.raises(PasskeyNotFound):
        services.authentication_options(portal.now(), portal.member)


def test_an_authenticator_without_a_counter_signs_in_again_and_again(portal):
    authenticator = SoftAuthenticator(counter=False)
    portal.register(portal.owner, authenticator)
    for _ in range(3):
        assert portal.sign_in(authenticator).passkey.sign_count == 0


def test_backup_state_follows_the_authenticator(portal, registered, authenticator):
    authenticator.backup_eligible = True
    assert portal.sign_in(authenticator).passkey.backed_up is True


def refused(portal, reason, handle, response, user=None, audited_user=None):
    uses = len(events(EventTag.FACTOR_USE))
    with pytest.raises(CeremonyRefused) as caught:
        services.authenticate(handle, json.dumps(response), portal.now(), user)
    assert (caught.value.reason, caught.value.message) == (reason, CeremonyRefused.MESSAGES[reason])
    db.session.commit()  # as the view does: the refusal's audit event is kept
    step = "sign_in" if user is None else "second_step"
    failure = events(EventTag.FACTOR_FAILURE)[-1]
    assert (failure.user_id, failure.details) == (audited_user, {"factor": "passkey", "step": step, "reason": reason})
    assert len(events(EventTag.FACTOR_USE)) == uses
    return caught.value


def options_for(portal, user=None):
    handle, options = services.authentication_options(portal.now(), user)
    return handle, options, json.loads(options)["challenge"]


def test_an_expired_challenge_is_refused(portal, authenticator, registered, clock):
    handle, options, _ = options_for(portal)
    response = authenticator.get(options, ORIGIN)
    clock.advance(minutes=5)
    refused(portal, "challenge_expired", handle, response)


def test_a_replayed_assertion_is_refused(portal, authenticator, registered):
    handle, options, _ = options_for(portal)
    response = authenticator.get(options, ORIGIN)
    services.authenticate(handle, json.dumps(response), portal.now())
    refused(portal, "challenge_unknown", handle, response)


@pytest.mark.parametrize("handle", ["A" * 43, "not a handle", "", None])
def test_an_unknown_challenge_is_refused(portal, authenticator, registered, handle):
    _, options, _ = options_for(portal)
    refused(portal, "challenge_unknown", handle, authenticator.get(options, ORIGIN))


def test_a_registration_challenge_cannot_sign_in(portal, authenticator, registered):
    handle, _ = services.registration_options(portal.owner, portal.now())
    _, options, _ = options_for(portal)
    refused(portal, "wrong_purpose", handle, authenticator.get(options, ORIGIN))


def test_a_second_step_challenge_cannot_sign_in_without_a_password(portal, authenticator, registered):
    handle, options, _ = options_for(portal, portal.owner)
    refused(portal, "wrong_purpose", handle, authenticator.get(options, ORIGIN))


def test_a_sign_in_challenge_cannot_serve_as_a_second_step(portal, authenticator, registered):
    handle, options, _ = options_for(portal)
    response = authenticator.get(options, ORIGIN)
    refused(portal, "wrong_purpose", handle, response, user=portal.owner, audited_user=portal.owner.id)


def test_another_users_second_step_challenge_is_refused(portal, authenticator, registered):
    portal.register(portal.member, SoftAuthenticator())
    handle, options, _ = options_for(portal, portal.owner)
    response = authenticator.get(options, ORIGIN)
    refused(portal, "wrong_user", handle, response, user=portal.member, audited_user=portal.member.id)


def test_a_foreign_origin_is_refused(portal, authenticator, registered):
    handle, options, _ = options_for(portal)
    response = authenticator.get(options, ORIGIN, client_origin="http://localhost:5001")
    refused(portal, "origin", handle, response, audited_user=portal.owner.id)


def test_a_signature_for_another_rp_id_is_refused(portal, authenticator, registered):
    handle, options, _ = options_for(portal)
    response = authenticator.get(options, ORIGIN, rp_id="gatehouse.example.evil")
    refused(portal, "rp_id", handle, response, audited_user=portal.owner.id)


def test_a_response_to_another_challenge_is_refused(portal, authenticator, registered):
    handle, _, _ = options_for(portal)
    _, other, _ = options_for(portal)
    refused(portal, "challenge_mismatch", handle, authenticator.get(other, ORIGIN), audited_user=portal.owner.id)


def test_an_unknown_credential_is_refused(portal, registered):
    stranger = SoftAuthenticator()
    stranger.create(services.registration_options(portal.owner, portal.now())[1], ORIGIN)  # made, never registered
    handle, options, _ = options_for(portal)
    refused(portal, "unknown_credential", handle, stranger.get(options, ORIGIN))


def test_another_users_passkey_is_not_a_second_step(portal, registered):
    members = SoftAuthenticator()
    portal.register(portal.member, members)
    handle, _, challenge = options_for(portal, portal.owner)
    response = members.assertion(members.credentials[0], challenge, ORIGIN)
    refused(portal, "foreign_credential", handle, response, user=portal.owner, audited_user=portal.owner.id)


def test_a_bad_signature_is_refused(portal, authenticator, registered):
    handle, options, _ = options_for(portal)
    response = authenticator.get(options, ORIGIN)
    response["response"]["clientDataJSON"] = b64url(
        json.dumps({**json.loads(from_b64url(response["response"]["clientDataJSON"])), "crossOrigin": True}).encode()
    )
    refused(portal, "invalid", handle, response, audited_user=portal.owner.id)


def test_a_discoverable_assertion_must_name_its_user(portal, authenticator, registered):
    handle, _, challenge = options_for(portal)
    response = authenticator.assertion(authenticator.credentials[0], challenge, ORIGIN, user_handle=False)
    refused(portal, "user_handle_mismatch", handle, response, audited_user=portal.owner.id)


def test_a_user_handle_must_be_the_credentials(portal, authenticator, registered):
    handle, _, challenge = options_for(portal)
    response = authenticator.assertion(authenticator.credentials[0], challenge, ORIGIN)
    response["response"]["userHandle"] = b64url(b"\x01" * 32)
    refused(portal, "user_handle_mismatch", handle, response, audited_user=portal.owner.id)


def test_the_second_step_may_omit_the_user_handle(portal, authenticator, registered):
    handle, _, challenge = options_for(portal, portal.owner)
    response = authenticator.assertion(authenticator.credentials[0], challenge, ORIGIN, user_handle=False)
    assert services.authenticate(handle, json.dumps(response), portal.now(), portal.owner).user.id == portal.owner.id


@pytest.mark.parametrize("last_count", [0, 1])
def test_a_cloned_authenticator_is_refused(portal, authenticator, registered, last_count):
    copy = authenticator.clone()
    portal.sign_in(authenticator)  # the genuine authenticator moves its counter to 2
    db.session.commit()
    copy.credentials[0].sign_count = last_count  # the copy says 1 or 2 next: not above 2
    handle, options, _ = options_for(portal)
    refused(portal, "cloned", handle, copy.get(options, ORIGIN), audited_user=portal.owner.id)
    assert db.session.get(PasskeyCredential, registered.id).sign_count == 2


def test_a_counter_that_drops_to_zero_is_refused(portal, authenticator, registered):
    authenticator.counter = False
    authenticator.credentials[0].sign_count = 0
    handle, options, _ = options_for(portal)
    refused(portal, "cloned", handle, authenticator.get(options, ORIGIN), audited_user=portal.owner.id)


def test_a_disabled_user_cannot_sign_in_with_a_passkey(portal, authenticator, registered):
    portal.owner.disabled_at = portal.now()
    db.session.commit()
    handle, options, _ = options_for(portal)
    refused(portal, "user_disabled", handle, authenticator.get(options, ORIGIN), audited_user=portal.owner.id)
    assert db.session.get(PasskeyCredential, registered.id).last_used_at is None


@pytest.mark.parametrize("threads", [2, 8])
def test_one_assertion_sent_concurrently_signs_in_once(make_app, clock, threads):
    """Each thread is a request: its own app context, its own connection, its own commit. On PostgreSQL the
    second DELETE of the challenge waits for the first and finds nothing; SQLite has one writer at a time."""
    app = make_app(ISSUER=ORIGIN)
    authenticator = SoftAuthenticator(counter=False)  # the counter cannot be what stops the copies
    with app.app_context():
        portal = portal_in(clock)
        portal.register(portal.owner, authenticator)
        handle, options, _ = options_for(portal)
        db.session.commit()
        body = json.dumps(authenticator.get(options, ORIGIN))
    barrier, outcomes = threading.Barrier(threads), []

    def request():
        with app.app_context():
            barrier.wait()
            try:
                services.authenticate(handle, body, clock.now())
                outcomes.append("signed in")
            except CeremonyRefused as refusal:
                outcomes.append(refusal.reason)
            db.session.commit()

    pool = [threading.Thread(target=request) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["challenge_unknown"] * (threads - 1) + ["signed in"]
    with app.app_context():
        assert len(events(EventTag.FACTOR_USE)) == 1
        assert len(events(EventTag.FACTOR_FAILURE)) == threads - 1
        assert db.session.scalar(sa.text("SELECT count(*) FROM passkey_challenges")) == 0


def test_a_copy_racing_the_original_with_the_same_counter_is_accepted_once(make_app, clock):
    """Two assertions with the same signature counter, each on its own challenge, sent at once: the counter's
    compare-and-set lets exactly one through (the other reads as a clone), on both backends."""
    app = make_app(ISSUER=ORIGIN)
    original = SoftAuthenticator()
    with app.app_context():
        portal = portal_in(clock)
        portal.register(portal.owner, original)
        copy = original.clone()
        bodies = []
        for authenticator in (original, copy):
            handle, options, _ = options_for(portal)
            bodies.append((handle, json.dumps(authenticator.get(options, ORIGIN))))  # both say counter 2
        db.session.commit()
    barrier, outcomes = threading.Barrier(2), []

    def request(handle, body):
        with app.app_context():
            barrier.wait()
            try:
                outcomes.append(services.authenticate(handle, body, clock.now()).passkey.sign_count)
            except CeremonyRefused as refusal:
                outcomes.append(refusal.reason)
            db.session.commit()

    pool = [threading.Thread(target=request, args=pair) for pair in bodies]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert sorted(outcomes, key=str) == [2, "cloned"]
