"""Domain errors of passkeys: each carries a short reason (for the audit log and tests) and a message for people."""


class PasskeyError(Exception):
    """Base of every refusal the passkey services raise; its message can be shown as it is."""

    reason = "refused"
    message = "This passkey could not be used. Try again."

    def __init__(self, reason: str | None = None, message: str | None = None):
        self.reason = reason or self.reason
        self.message = message or self.message
        super().__init__(self.message)


class PasskeysUnavailable(PasskeyError):
    """The relying party (RP ID, origin) configured or derived from ISSUER is not one WebAuthn accepts."""

    reason = "unavailable"
    message = "Passkeys are not available on this server."


class CeremonyRefused(PasskeyError):
    """A registration or assertion was refused: its challenge, the response, the credential or its user.
    user_id: whose passkey it was, once known (for the audit event)."""

    MESSAGES = {
        "challenge_unknown": "This passkey request is no longer valid. Start again.",
        "challenge_expired": "This passkey request expired. Start again.",
        "wrong_purpose": "This passkey response was meant for another step. Start again.",
        "wrong_user": "This passkey request belongs to another sign-in. Start again.",
        "challenge_mismatch": "This passkey response does not answer this request. Start again.",
        "malformed": "The browser's passkey response could not be read.",
        "origin": "This passkey response came from another site.",
        "rp_id": "This passkey was made for another site.",
        "unknown_credential": "This passkey is not registered here.",
        "foreign_credential": "This passkey is not one of yours.",
        "already_registered": "This passkey is already registered.",
        "cloned": "This passkey's signature counter went backwards, a sign that it was copied; it was refused.",
        "user_disabled": "This account is disabled.",
        "user_handle_mismatch": "This passkey could not be verified.",
        "invalid": "This passkey could not be verified.",
    }

    def __init__(self, reason: str, user_id: int | None = None):
        super().__init__(reason, self.MESSAGES[reason])
        self.user_id = user_id


class PasskeyNotFound(PasskeyError):
    """No passkey of this user has that id (a malformed id reads the same)."""

    reason = "not_found"
    message = "That passkey was not found."


class InvalidPasskeyName(PasskeyError):
    reason = "invalid_name"
