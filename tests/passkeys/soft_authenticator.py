"""A software authenticator and the browser in front of it: it answers options JSON with the response JSON a
browser sends (PublicKeyCredential.toJSON(), WebAuthn L3 §5.1), so the services are tested through py_webauthn's
real verification. EC P-256 keys (ES256), attestation "none", a signature counter that can be switched off."""

import base64
import copy
import hashlib
import json
import secrets
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP, FLAG_UV, FLAG_BE, FLAG_BS, FLAG_AT = 0x01, 0x04, 0x08, 0x10, 0x40
COSE_ES256 = -7


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidStateError(Exception):
    """What navigator.credentials.create() rejects with when the authenticator holds an excluded credential."""


class NotAllowedError(Exception):
    """What navigator.credentials.get() rejects with when the authenticator holds no allowed credential."""


@dataclass
class Credential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


class SoftAuthenticator:
    """A platform authenticator with resident keys. Settings are attributes, so a test can change one between
    ceremonies (a user who skips verification, a counter that stops)."""

    def __init__(self, *, counter: bool = True, user_verified: bool = True, backup_eligible: bool = False):
        self.counter = counter
        self.user_verified = user_verified
        self.backup_eligible = backup_eligible
        self.aaguid = bytes(16)
        self.credentials: list[Credential] = []

    def clone(self) -> "SoftAuthenticator":
        """A copy with the same keys and counters: what an attacker who extracted the keys would hold."""
        return copy.deepcopy(self)

    # navigator.credentials.create()

    def create(self, options_json: str, origin: str, *, rp_id: str | None = None, client_origin: str | None = None):
        options = json.loads(options_json)
        rp = rp_id or options["rp"]["id"]
        excluded = {from_b64url(d["id"]) for d in options.get("excludeCredentials", [])}
        if any(c.credential_id in excluded and c.rp_id == rp for c in self.credentials):
            raise InvalidStateError("this authenticator already holds one of the excluded credentials")
        credential = Credential(
            secrets.token_bytes(16), ec.generate_private_key(ec.SECP256R1()), rp, from_b64url(options["user"]["id"])
        )
        # A resident key replaces the one this authenticator held for the same RP and user handle (L3 §6.3.2).
        self.credentials = [
            c for c in self.credentials if (c.rp_id, c.user_handle) != (credential.rp_id, credential.user_handle)
        ]
        self.credentials.append(credential)
        return self.registration_response(credential, options["challenge"], client_origin or origin)

    def registration_response(self, credential: Credential, challenge: str, origin: str) -> dict:
        client_data = self._client_data("webauthn.create", challenge, origin)
        attested = self.aaguid + len(credential.credential_id).to_bytes(2, "big") + credential.credential_id
        auth_data = self._auth_data(credential, FLAG_AT) + attested + cbor2.dumps(_cose_key(credential))
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "authenticatorData": b64url(auth_data),
                "transports": ["internal", "hybrid"],
                "publicKeyAlgorithm": COSE_ES256,
            },
            "clientExtensionResults": {},
        }

    # navigator.credentials.get()

    def get(self, options_json: str, origin: str, *, rp_id: str | None = None, client_origin: str | None = None):
        """rp_id, client_origin: what a phishing page or a confused browser would sign instead."""
        options = json.loads(options_json)
        allowed = {from_b64url(d["id"]) for d in options.get("allowCredentials", [])}
        held = [
            c for c in self.credentials if c.rp_id == options["rpId"] and (not allowed or c.credential_id in allowed)
        ]
        if not held:
            raise NotAllowedError("no credential for this request")
        return self.assertion(held[-1], options["challenge"], client_origin or origin, rp_id=rp_id)

    def assertion(
        self, credential: Credential, challenge: str, origin: str, *, rp_id: str | None = None, user_handle: bool = True
    ) -> dict:
        client_data = self._client_data("webauthn.get", challenge, origin)
        auth_data = self._auth_data(credential, 0, rp_id)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = credential.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if user_handle:
            response["userHandle"] = b64url(credential.user_handle)
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": response,
            "clientExtensionResults": {},
        }

    def _auth_data(self, credential: Credential, extra_flags: int, rp_id: str | None = None) -> bytes:
        if self.counter:
            credential.sign_count += 1
        flags = FLAG_UP | extra_flags | (FLAG_UV if self.user_verified else 0)
        flags |= (FLAG_BE | FLAG_BS) if self.backup_eligible else 0
        rp_id_hash = hashlib.sha256((rp_id or credential.rp_id).encode()).digest()
        return rp_id_hash + bytes([flags]) + credential.sign_count.to_bytes(4, "big")

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        # The serialisation browsers use (L3 §5.8.1.1): these keys in this order, no spaces.
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}, separators=(",", ":")
        ).encode()


def _cose_key(credential: Credential) -> dict:
    numbers = credential.private_key.public_key().public_numbers()
    # RFC 9053 §7.1.1: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
    return {1: 2, 3: COSE_ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
