"""The shapes of the identifiers requests carry (DESIGN §8), checked at the edge before any reaches a query.

A malformed identifier (a NUL byte, which PostgreSQL refuses outright, control characters, non-ASCII text, or
anything longer than its column) is answered exactly as an unknown one: the callers treat False as "not found".
`fullmatch`, not `match` with `$`, which would let a trailing newline through.
"""

import re
from typing import TypeGuard

# RFC 6749 §2.2 leaves client ids to the server; ours are "gh_" + base64url, and the column holds 64.
CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
# Portal session and grant public ids: base64url of 32 random bytes (43 characters); the columns hold 64.
PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A client app's device cookie value, passed to /oauth/authorize and /internal/devices/check (column: 128).
DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The grant token a client app holds (app/oauth/tokens.py: "ghg_" + base64url of 32 random bytes).
GRANT_TOKEN = re.compile(r"ghg_[A-Za-z0-9_-]{20,100}")
# RFC 7636 §4.2: the S256 challenge is BASE64URL(SHA256(verifier)), 43 characters.
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 7636 §4.1: the verifier is 43 to 128 unreserved characters.
CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


# The largest id a row of ours can have (PostgreSQL integer): a larger one from a URL is a driver error there, not a
# miss, so it is answered as unknown before any query.
MAX_ROW_ID = 2**31 - 1


def is_row_id(value: int) -> bool:
    return 0 < value <= MAX_ROW_ID


def _shaped(pattern: re.Pattern, value: object) -> TypeGuard[str]:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_client_id(value: object) -> TypeGuard[str]:
    return _shaped(CLIENT_ID, value)


def is_public_id(value: object) -> TypeGuard[str]:
    return _shaped(PUBLIC_ID, value)


def is_device_id(value: object) -> TypeGuard[str]:
    return _shaped(DEVICE_ID, value)


def is_grant_token(value: object) -> TypeGuard[str]:
    return _shaped(GRANT_TOKEN, value)


def is_code_challenge(value: object) -> TypeGuard[str]:
    return _shaped(CODE_CHALLENGE, value)


def is_code_verifier(value: object) -> TypeGuard[str]:
    return _shaped(CODE_VERIFIER, value)
