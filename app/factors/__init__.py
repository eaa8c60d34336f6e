"""Second factors kept as secrets: the authenticator app (TOTP, RFC 6238) and recovery codes (DESIGN §9)."""
