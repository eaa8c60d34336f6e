"""Registering a passkey: the options a browser gets, what is kept, and every refusal (audited)."""

import json

import cbor2
import pytest
import sqlalchemy as sa

from app.audit.tags import EventTag
from app.extensions import db
from app.passkeys import services
from app.passkeys.errors import CeremonyRefused
from app.passkeys.models import PasskeyChallenge, PasskeyCredential
from tests.passkeys.conftest import ORIGIN, events
from tests.passkeys.soft_authenticator import InvalidStateError, SoftAuthenticator, b64url, from_b64url


def test_options_ask_for_a_discoverable_credential(portal):
    _, options_json = services.registration_options(portal.owner, portal.now())
    options = json.loads(options_json)
    assert options["rp"] == {"id": "localhost", "name": "Gatehouse"}
    assert options["user"]["name"] == portal.owner.email
    assert options["user"]["displayName"] == portal.owner.name
    assert len(from_b64url(options["user"]["id"])) == 32  # random, neither the e-mail nor a database id
    assert options["authenticatorSelection"] == {"residentKey": "preferred", "requireResidentKey": False,
                                                 "userVerification": "preferred"}  # fmt: skip
    assert options["attestation"] == "none"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert options["timeout"] == 300_000
    assert options["excludeCredentials"] == []


def test_a_registered_passkey_is_kept_with_its_device_name(portal, authenticator):
    passkey = portal.register(portal.owner, authenticator, name="  Chrome   on macOS ")
    stored = authenticator.credentials[0]
    assert passkey.credential_id == stored.credential_id
    assert passkey.user_handle == stored.user_handle
    assert (passkey.name, passkey.sign_count, passkey.transports) == ("Chrome on macOS", 1, ["hybrid", "internal"])
    assert (passkey.aaguid, passkey.backup_eligible, passkey.backed_up) == ("00000000-0000-0000-0000-000000000000",
                                                                           False, False)  # fmt: skip
    assert (passkey.created_at, passkey.last_used_at) == (portal.now(), None)
    assert [p.public_id for p in services.list_for(portal.owner)] == [passkey.public_id]
    added = events(EventTag.FACTOR_ADD)
    assert [(e.user_id, e.details) for e in added] == [(portal.owner.id, {"factor": "passkey",
                                                                          "passkey": passkey.public_id})]  # fmt: skip
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PasskeyChallenge)) == 0  # spent


def test_a_synced_passkey_records_its_backup_flags(portal):
    passkey = portal.register(portal.owner, SoftAuthenticator(backup_eligible=True))
    assert (passkey.backup_eligible, passkey.backed_up) == (True, True)


@pytest.mark.parametrize(("given", "kept"), [("", "Passkey"), ("   ", "Passkey"), ("x" * 200, "x" * 64)])
def test_device_names_are_tidied_to_fit(portal, authenticator, given, kept):
    assert portal.register(portal.owner, authenticator, name=given).name == kept


def test_a_second_passkey_is_made_for_the_same_webauthn_user_and_excludes_the_first(portal, authenticator):
    first = portal.register(portal.owner, authenticator)
    _, options_json = services.registration_options(portal.owner, portal.now())
    options = json.loads(options_json)
    assert from_b64url(options["user"]["id"]) == first.user_handle
    assert options["excludeCredentials"] == [{"id": b64url(first.credential_id), "type": "public-key",
                                              "transports": ["hybrid", "internal"]}]  # fmt: skip
    with pytest.raises(InvalidStateError):  # the browser refuses to make a second one on the same authenticator
        authenticator.create(options_json, ORIGIN)
    second = portal.register(portal.owner, SoftAuthenticator(), name="iPhone")
    assert [p.name for p in services.list_for(portal.owner)] == ["Chrome on macOS", "iPhone"]
    assert second.user_handle == first.user_handle


def test_users_get_different_webauthn_user_handles(portal):
    owner_key = portal.register(portal.owner, SoftAuthenticator())
    member_key = portal.register(portal.member, SoftAuthenticator())
    assert owner_key.user_handle != member_key.user_handle


def refused(portal, reason, user, handle, response):
    with pytest.raises(CeremonyRefused) as caught:
        services.register(user, handle, json.dumps(response), "Chrome on macOS", portal.now())
    assert caught.value.reason == reason
    assert caught.value.message == CeremonyRefused.MESSAGES[reason]
    db.session.commit()  # as the view does: the refusal's audit event is kept
    failures = events(EventTag.FACTOR_FAILURE)
    assert [(e.user_id, e.details) for e in failures][-1] == (user.id, {"factor": "passkey", "step": "register",
                                                                        "reason": reason})  # fmt: skip
    return caught.value


def test_an_expired_challenge_is_refused(portal, authenticator, clock):
    handle, options = services.registration_options(portal.owner, portal.now())
    response = authenticator.create(options, ORIGIN)
    clock.advance(seconds=300)
    refused(portal, "challenge_expired", portal.owner, handle, response)
    assert services.list_for(portal.owner) == []


def test_a_challenge_just_within_its_five_minutes_is_accepted(portal, authenticator, clock):
    handle, options = services.registration_options(portal.owner, portal.now())
    response = authenticator.create(options, ORIGIN)
    clock.advance(seconds=299)
    services.register(portal.owner, handle, json.dumps(response), "Laptop", portal.now())


def test_a_replayed_challenge_is_refused(portal, authenticator):
    handle, options = services.registration_options(portal.owner, portal.now())
    response = authenticator.create(options, ORIGIN)
    services.register(portal.owner, handle, json.dumps(response), "Laptop", portal.now())
    db.session.commit()
    refused(portal, "challenge_unknown", portal.owner, handle, response)
    assert len(services.list_for(portal.owner)) == 1


@pytest.mark.parametrize("handle", ["A" * 43, "", "A" * 42, "A" * 44, "A" * 42 + "\x00", None, 12, ["x"]])
def test_an_unknown_or_malformed_handle_is_refused(portal, authenticator, handle):
    _, options = services.registration_options(portal.owner, portal.now())
    refused(portal, "challenge_unknown", portal.owner, handle, authenticator.create(options, ORIGIN))


def test_a_challenge_is_spent_even_when_the_response_is_refused(portal, authenticator):
    handle, options = services.registration_options(portal.owner, portal.now())
    good = authenticator.create(options, ORIGIN)
    refused(portal, "malformed", portal.owner, handle, {"id": good["id"]})
    refused(portal, "challenge_unknown", portal.owner, handle, good)


def test_a_sign_in_challenge_cannot_register(portal, authenticator):
    _, options = services.registration_options(portal.owner, portal.now())
    handle, _ = services.authentication_options(portal.now())
    refused(portal, "wrong_purpose", portal.owner, handle, authenticator.create(options, ORIGIN))


def test_another_users_challenge_cannot_register(portal, authenticator):
    handle, options = services.registration_options(portal.owner, portal.now())
    refused(portal, "wrong_user", portal.member, handle, authenticator.create(options, ORIGIN))
    assert services.list_for(portal.member) == services.list_for(portal.owner) == []


def test_a_response_to_another_challenge_is_refused(portal, authenticator):
    handle, _ = services.registration_options(portal.owner, portal.now())
    _, other_options = services.registration_options(portal.owner, portal.now())
    refused(portal, "challenge_mismatch", portal.owner, handle, authenticator.create(other_options, ORIGIN))


def test_a_foreign_origin_is_refused(portal, authenticator):
    handle, options = services.registration_options(portal.owner, portal.now())
    response = authenticator.create(options, ORIGIN, client_origin="https://gatehouse.example.evil")
    refused(portal, "origin", portal.owner, handle, response)


def test_a_credential_for_another_rp_id_is_refused(portal, authenticator):
    handle, options = services.registration_options(portal.owner, portal.now())
    refused(portal, "rp_id", portal.owner, handle, authenticator.create(options, ORIGIN, rp_id="example.evil"))


def test_a_credential_registered_elsewhere_cannot_be_registered_again(portal, authenticator):
    portal.register(portal.owner, authenticator)
    handle, options = services.registration_options(portal.member, portal.now())
    challenge = json.loads(options)["challenge"]
    replayed = authenticator.registration_response(authenticator.credentials[0], challenge, ORIGIN)
    refused(portal, "already_registered", portal.member, handle, replayed)
    assert services.list_for(portal.member) == []


def test_a_key_of_an_algorithm_we_did_not_offer_is_refused(portal, authenticator):
    handle, options = services.registration_options(portal.owner, portal.now())
    response = authenticator.create(options, ORIGIN)
    attestation = cbor2.loads(from_b64url(response["response"]["attestationObject"]))
    attestation["authData"] = attestation["authData"].replace(b"\x03\x26", b"\x03\x38\x23")  # COSE alg -7 → -36
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    refused(portal, "invalid", portal.owner, handle, response)


def test_credentials_cascade_with_their_user(portal, authenticator):
    portal.register(portal.member, authenticator)
    portal.member.delete()
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PasskeyCredential)) == 0


def test_expired_challenges_are_forgotten_and_fresh_ones_kept(portal, authenticator, clock):
    services.registration_options(portal.owner, portal.now())
    services.authentication_options(portal.now())
    clock.advance(seconds=301)
    handle, options = services.registration_options(portal.owner, portal.now())
    assert services.forget_expired_challenges(portal.now()) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PasskeyChallenge)) == 1
    services.register(portal.owner, handle, json.dumps(authenticator.create(options, ORIGIN)), "Laptop", portal.now())
