"""Passkeys (DESIGN §9, WebAuthn Level 3 through py_webauthn): register one, sign in with one (with no e-mail or
password, or as the second step after the password), rename, remove, list.

Each ceremony is two calls: `*_options` issues a single-use challenge and returns (handle, options JSON); the caller
keeps the handle in the signed session and passes it back with the browser's response. A refusal raises a
PasskeyError after recording a FACTOR_FAILURE event: the caller commits then too (the event and the spent challenge
are part of the outcome). Services flush, never commit.
"""

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.accounts.models import User
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.passkeys import ceremony, relying_party
from app.passkeys.errors import CeremonyRefused, InvalidPasskeyName, PasskeyNotFound
from app.passkeys.models import (
    MAX_NAME_LENGTH,
    PURPOSE_REGISTER,
    PURPOSE_SECOND_STEP,
    PURPOSE_SIGN_IN,
    PasskeyCredential,
)

log = logging.getLogger(__name__)

FACTOR = "passkey"
USER_HANDLE_BYTES = 32  # WebAuthn L3 §14.6.1: a random user handle, never the e-mail or a database id
DEFAULT_NAME = "Passkey"
# ES256 first: every platform authenticator has it; EdDSA and RS256 (Windows Hello) after it (L3 §5.4 pubKeyCredParams).
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
# py_webauthn's refusals, told apart for the audit log and the message (the library is pinned; tests pin each).
LIBRARY_REASONS = {
    "Client data challenge was not expected challenge": "challenge_mismatch",
    "Unexpected client data origin": "origin",
    "Unexpected RP ID hash": "rp_id",
}


class CeremonyOptions(NamedTuple):
    handle: str  # keep it server-side (the signed session) and pass it back with the response
    options_json: str  # for navigator.credentials.create() / .get() (PublicKeyCredential.parse*OptionsFromJSON)


@dataclass(frozen=True)
class Assertion:
    user: User
    passkey: PasskeyCredential
    user_verified: bool  # the authenticator verified the user (PIN, biometrics): the caller may count both steps


def registration_options(user: User, now: datetime) -> CeremonyOptions:
    """Options to make a discoverable credential for this user (resident key and user verification preferred),
    excluding the authenticators that already hold one of theirs."""
    rp = relying_party.current()
    user_handle = PasskeyCredential.user_handle_of(user.id) or secrets.token_bytes(USER_HANDLE_BYTES)
    challenge = ceremony.issue(PURPOSE_REGISTER, now, user_id=user.id, user_handle=user_handle)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle,
        user_name=user.email,
        user_display_name=user.name,
        challenge=challenge,
        timeout=ceremony.CHALLENGE_TTL_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(user.id),
        supported_pub_key_algs=ALGORITHMS,
    )
    return CeremonyOptions(ceremony.handle_of(challenge), options_to_json(options))


def register(user: User, handle: object, credential_json: object, device_name: str, now: datetime) -> PasskeyCredential:
    """Verify the browser's registration response and keep the credential, named after the device it was made on.
    Raises CeremonyRefused (audited)."""
    rp = relying_party.current()
    with _refusals_audited("register", user.id):
        challenge, spent = ceremony.take(handle, PURPOSE_REGISTER, now, user.id)
        response = ceremony.registration_response(credential_json)
        verified = _library_verdict(
            lambda: verify_registration_response(
                credential=response,
                expected_challenge=challenge,
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
                supported_pub_key_algs=ALGORITHMS,
            )
        )
        if PasskeyCredential.by_credential_id(verified.credential_id) is not None:
            raise CeremonyRefused("already_registered")
    passkey = PasskeyCredential(
        public_id=secrets.token_urlsafe(32),
        user_id=user.id,
        credential_id=verified.credential_id,
        user_handle=spent.user_handle,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=_transports(response),
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        name=_device_name(device_name),
        created_at=now,
    )
    db.session.add(passkey)
    db.session.flush()
    _record(EventTag.FACTOR_ADD, user, passkey)
    return passkey


def authentication_options(now: datetime, user: User | None = None) -> CeremonyOptions:
    """Without a user: the discoverable sign-in (no allowCredentials, the authenticator offers its passkeys for
    us). With one: the second step after the password, allowing only that user's passkeys (PasskeyNotFound when
    they have none)."""
    rp = relying_party.current()
    allowed = []
    if user is not None:
        allowed = _descriptors(user.id)
        if not allowed:
            raise PasskeyNotFound("none_registered", "You have no passkey to use.")
    purpose = PURPOSE_SIGN_IN if user is None else PURPOSE_SECOND_STEP
    challenge = ceremony.issue(purpose, now, user_id=None if user is None else user.id)
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=ceremony.CHALLENGE_TTL_SECONDS * 1000,
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return CeremonyOptions(ceremony.handle_of(challenge), options_to_json(options))


def authenticate(handle: object, credential_json: object, now: datetime, user: User | None = None) -> Assertion:
    """Verify an assertion: the user it proves (for the second step, it must be `user`) and whether the
    authenticator verified them. Moves the signature counter and last use. Raises CeremonyRefused (audited)."""
    rp = relying_party.current()
    step = PURPOSE_SIGN_IN if user is None else PURPOSE_SECOND_STEP
    user_id = None if user is None else user.id
    with _refusals_audited(step, user_id):
        challenge, _ = ceremony.take(handle, step, now, user_id)
        response = ceremony.assertion_response(credential_json)
        passkey = _asserted_passkey(response, user_id)
        verified = _library_verdict(
            lambda: verify_authentication_response(
                credential=response,
                expected_challenge=challenge,
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
                credential_public_key=passkey.public_key,
                # 0: the library skips its counter check; ours follows the signature, atomically (record_use).
                credential_current_sign_count=0,
            ),
            user_id=passkey.user_id,
        )
        owner = _usable_owner(passkey)
        if not PasskeyCredential.record_use(passkey.id, verified.new_sign_count, verified.credential_backed_up, now):
            raise CeremonyRefused("cloned", user_id=owner.id)  # L3 §7.2 step 21: the counter did not move forward
    db.session.refresh(passkey)
    audit.record(
        EventTag.FACTOR_USE,
        user_id=owner.id,
        account_id=owner.account_id,
        factor=FACTOR,
        passkey=passkey.public_id,
        step=step,
        user_verified=verified.user_verified,
    )
    return Assertion(owner, passkey, verified.user_verified)


def forget_expired_challenges(now: datetime) -> int:
    """Housekeeping for a periodic job: delete challenges past their expiry (they are refused anyway)."""
    return ceremony.forget_expired(now)


def list_for(user: User) -> list[PasskeyCredential]:
    """The user's passkeys, oldest first."""
    return PasskeyCredential.of_user(user.id)


def rename(user: User, credential_public_id: object, name: str, now: datetime) -> PasskeyCredential:
    passkey = _own(user, credential_public_id)
    new_name = " ".join((name or "").split())
    if not new_name or len(new_name) > MAX_NAME_LENGTH:
        raise InvalidPasskeyName(message=f"A passkey's name is 1 to {MAX_NAME_LENGTH} characters.")
    passkey.name = new_name
    db.session.flush()
    _record(EventTag.FACTOR_RENAME, user, passkey)
    return passkey


def remove(user: User, credential_public_id: object, now: datetime) -> None:
    """Remove one of the user's passkeys (the caller asks for a fresh sign-in first, DESIGN §9)."""
    passkey = _own(user, credential_public_id)
    if not PasskeyCredential.delete_one(passkey.id):
        raise PasskeyNotFound()  # removed by a concurrent request
    db.session.expunge(passkey)
    _record(EventTag.FACTOR_REMOVE, user, passkey)


def _record(tag: EventTag, user: User, passkey: PasskeyCredential) -> None:
    audit.record(tag, user_id=user.id, account_id=user.account_id, factor=FACTOR, passkey=passkey.public_id)


def _own(user: User, public_id: object) -> PasskeyCredential:
    passkey = PasskeyCredential.by_public_id(user.id, public_id) if isinstance(public_id, str) else None
    if passkey is None:
        raise PasskeyNotFound()
    return passkey


def _asserted_passkey(response: AuthenticationCredential, user_id: int | None) -> PasskeyCredential:
    passkey = PasskeyCredential.by_credential_id(response.raw_id)
    if passkey is None:
        raise CeremonyRefused("unknown_credential", user_id=user_id)
    if user_id is not None and passkey.user_id != user_id:
        raise CeremonyRefused("foreign_credential", user_id=user_id)
    # L3 §7.2 step 6: a discoverable assertion names its user; it must be the credential's. The second step knows
    # the user already, and a handle, when sent, must still match.
    handle = response.response.user_handle
    if (handle is None and user_id is None) or (handle is not None and handle != passkey.user_handle):
        raise CeremonyRefused("user_handle_mismatch", user_id=passkey.user_id)
    return passkey


def _usable_owner(passkey: PasskeyCredential) -> User:
    owner = db.session.get(User, passkey.user_id)
    if owner is None or owner.disabled_at is not None:
        # Said only after the signature: only the passkey's holder learns that the account is disabled.
        raise CeremonyRefused("user_disabled", user_id=passkey.user_id)
    return owner


def _library_verdict(verify, user_id: int | None = None):
    """py_webauthn reads CBOR, COSE keys and signatures the browser (or anyone) sent, and not only its own exceptions
    come out: a malformed COSE key gives KeyError, TypeError or IndexError (found by tests/passkeys fuzzing). Whatever
    it raises on those bytes is a refusal, never an error of ours."""
    try:
        return verify()
    except Exception as exc:  # see above: the library's inputs are attacker-controlled bytes
        reason = next((r for prefix, r in LIBRARY_REASONS.items() if str(exc).startswith(prefix)), "invalid")
        log.info("passkey response refused (%s): %s", reason, type(exc).__name__)
        raise CeremonyRefused(reason, user_id=user_id) from exc


@contextmanager
def _refusals_audited(step: str, user_id: int | None) -> Iterator[None]:
    try:
        yield
    except CeremonyRefused as refused:
        audit.record(
            EventTag.FACTOR_FAILURE,
            user_id=refused.user_id if refused.user_id is not None else user_id,
            factor=FACTOR,
            step=step,
            reason=refused.reason,
        )
        raise


def _descriptors(user_id: int) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=_known_transports(passkey.transports))
        for passkey in PasskeyCredential.of_user(user_id)
    ]


def _transports(response: RegistrationCredential) -> list[str]:
    return sorted({transport.value for transport in response.response.transports or []})


def _known_transports(values: list) -> list[AuthenticatorTransport]:
    known = {transport.value for transport in AuthenticatorTransport}
    return [AuthenticatorTransport(value) for value in values if value in known]


def _device_name(device_name: str) -> str:
    """The caller's name for the device (from its user agent), tidied to fit; a blank one gets a default."""
    name = " ".join((device_name or "").split())[:MAX_NAME_LENGTH].strip()
    return name or DEFAULT_NAME
