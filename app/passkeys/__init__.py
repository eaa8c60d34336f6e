"""Passkeys: WebAuthn credentials, registered and asserted through py_webauthn (DESIGN §9)."""
