"""A WebAuthn ceremony's two ends: the challenge issued with the options and taken back once with the response,
and the response itself, read from the JSON the browser sent (bounded, and refused whole when malformed)."""

import base64
import binascii
import hashlib
import re
import secrets
from datetime import datetime, timedelta

from webauthn.helpers import parse_authentication_credential_json, parse_registration_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AuthenticationCredential, RegistrationCredential

from app.extensions import db
from app.passkeys.errors import CeremonyRefused
from app.passkeys.models import ConsumedChallenge, PasskeyChallenge
from app.security import json_bodies

CHALLENGE_TTL_SECONDS = 300
# WebAuthn L3 §13.4.3: at least 16 random bytes; 32 give a 43-character base64url handle.
CHALLENGE_BYTES = 32
HANDLE = re.compile(r"[A-Za-z0-9_-]{43}")
# A response with a "none" attestation is well under 2 KiB; attestation certificate chains add a few KiB.
MAX_RESPONSE_BYTES = 64 * 1024


def issue(purpose: str, now: datetime, user_id: int | None = None, user_handle: bytes | None = None) -> bytes:
    """A new challenge for one ceremony; only its digest is stored."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    db.session.add(
        PasskeyChallenge(
            challenge_hash=_digest(challenge),
            purpose=purpose,
            user_id=user_id,
            user_handle=user_handle,
            created_at=now,
            expires_at=now + timedelta(seconds=CHALLENGE_TTL_SECONDS),
        )
    )
    db.session.flush()
    return challenge


def handle_of(challenge: bytes) -> str:
    """The challenge is the ceremony's handle: the caller keeps it (in the signed session) to name the ceremony."""
    return base64.urlsafe_b64encode(challenge).rstrip(b"=").decode()


def take(handle: object, purpose: str, now: datetime, user_id: int | None) -> tuple[bytes, ConsumedChallenge]:
    """Spend the ceremony's challenge (once, whatever follows) and check what it was issued for; return the
    challenge the response must carry and its binding."""
    challenge = _challenge_from(handle)
    spent = PasskeyChallenge.consume(_digest(challenge)) if challenge else None
    if challenge is None or spent is None:
        raise CeremonyRefused("challenge_unknown")  # never issued, already used, or purged
    if spent.expires_at <= now:
        raise CeremonyRefused("challenge_expired")
    if spent.purpose != purpose:
        raise CeremonyRefused("wrong_purpose")
    if spent.user_id != user_id:
        raise CeremonyRefused("wrong_user")
    return challenge, spent


def forget_expired(now: datetime) -> int:
    return PasskeyChallenge.delete_expired(now)


def registration_response(raw: object) -> RegistrationCredential:
    body = _bounded_object(raw)
    try:
        return parse_registration_credential_json(body)
    except (WebAuthnException, ValueError) as exc:  # ValueError: bad base64url (binascii.Error)
        raise CeremonyRefused("malformed") from exc


def assertion_response(raw: object) -> AuthenticationCredential:
    body = _bounded_object(raw)
    try:
        return parse_authentication_credential_json(body)
    except (WebAuthnException, ValueError) as exc:  # ValueError: a userHandle in bad base64url
        raise CeremonyRefused("malformed") from exc


def _bounded_object(raw: object) -> dict:
    """DESIGN §8: bounded in size and depth before anything reads it."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, bytes) or len(raw) > MAX_RESPONSE_BYTES:
        raise CeremonyRefused("malformed")
    try:
        return json_bodies.object_from(raw)
    except json_bodies.InvalidJSON as exc:
        raise CeremonyRefused("malformed") from exc


def _challenge_from(handle: object) -> bytes | None:
    if not isinstance(handle, str) or not HANDLE.fullmatch(handle):
        return None  # DESIGN §8: a malformed handle reads as an unknown one
    try:
        return base64.urlsafe_b64decode(handle + "=")
    except binascii.Error:
        return None


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()
