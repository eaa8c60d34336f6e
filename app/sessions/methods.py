"""How a session signed in (DESIGN §9): the methods it used, stored as RFC 8176 `amr` values on the session and on
the grants it approves, and what they add up to: the `acr` client apps see and the words the devices page shows."""

from collections.abc import Iterable

PASSWORD = "pwd"
AUTHENTICATOR_APP = "otp"  # RFC 8176 §2: a one-time password
RECOVERY_CODE = "rec"  # ours: a recovery code is a one-time password too, told apart on the devices page
HARDWARE_KEY = "hwk"  # RFC 8176: proof of possession of a hardware-secured key (a passkey bound to its device)
SOFTWARE_KEY = "swk"  # a synced passkey (backed up by the platform)
USER_PRESENCE = "user"  # RFC 8176: user presence test; with a passkey, user verification (PIN or biometric)

ACR_PASSWORD = "urn:gatehouse:acr:pwd"
ACR_MFA = "urn:gatehouse:acr:mfa"
ACR_VALUES = (ACR_PASSWORD, ACR_MFA)

_SECOND_STEPS = {AUTHENTICATOR_APP: "authenticator app", RECOVERY_CODE: "recovery code", HARDWARE_KEY: "passkey",
                 SOFTWARE_KEY: "passkey"}  # fmt: skip


def joined(methods: Iterable[str]) -> str:
    """The stored form: space-separated, in the order used, each once."""
    return " ".join(dict.fromkeys(methods))


def amr(stored: str) -> list[str]:
    """RFC 8176 values for the ID token (a recovery code is an `otp`)."""
    return list(dict.fromkeys(AUTHENTICATOR_APP if m == RECOVERY_CODE else m for m in stored.split()))


def is_multi_factor(stored: str) -> bool:
    """Two factors: a password and a second step, or a passkey with user verification (possession + inherence or
    knowledge, verified by the authenticator)."""
    methods = set(stored.split())
    passkey = bool(methods & {HARDWARE_KEY, SOFTWARE_KEY})
    return (PASSWORD in methods and bool(methods & set(_SECOND_STEPS))) or (passkey and USER_PRESENCE in methods)


def acr(stored: str) -> str:
    return ACR_MFA if is_multi_factor(stored) else ACR_PASSWORD


def describe(stored: str) -> str:
    """ "Password", "Password + authenticator app", "Passkey", … for the devices page."""
    methods = stored.split()
    passkey = any(m in (HARDWARE_KEY, SOFTWARE_KEY) for m in methods)
    if PASSWORD not in methods:
        return "Passkey" if passkey else "Unknown"
    second = next((_SECOND_STEPS[m] for m in methods if m in _SECOND_STEPS), None)
    return f"Password + {second}" if second else "Password"
