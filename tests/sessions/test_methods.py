"""How a session signed in, as client apps (amr, acr) and the devices page read it (app/sessions/methods.py)."""

import pytest

from app.sessions import methods


@pytest.mark.parametrize(
    ("stored", "amr", "acr", "words"),
    [
        ("pwd", ["pwd"], methods.ACR_PASSWORD, "Password"),
        ("pwd otp", ["pwd", "otp"], methods.ACR_MFA, "Password + authenticator app"),
        ("pwd rec", ["pwd", "otp"], methods.ACR_MFA, "Password + recovery code"),
        ("pwd hwk", ["pwd", "hwk"], methods.ACR_MFA, "Password + passkey"),
        ("hwk user", ["hwk", "user"], methods.ACR_MFA, "Passkey"),
        ("swk user", ["swk", "user"], methods.ACR_MFA, "Passkey"),
        ("hwk", ["hwk"], methods.ACR_PASSWORD, "Passkey"),  # no user verification: one factor
    ],
)
def test_methods_add_up(stored, amr, acr, words):
    assert methods.amr(stored) == amr
    assert methods.acr(stored) == acr
    assert methods.describe(stored) == words


def test_joined_keeps_the_order_once():
    assert methods.joined(["pwd", "otp", "pwd"]) == "pwd otp"
