"""The factors' keys: one per use, derived from SECRET_KEY, its fallbacks still opening what they sealed."""

import pytest
from cryptography.fernet import InvalidToken

from app.factors import secrets

OLD_KEY, NEW_KEY = "o" * 40, "n" * 40


def test_each_use_has_its_own_key_and_none_is_the_secret_key_itself(app_ctx):
    totp_keys = secrets.derived_keys(secrets.TOTP_SECRET_INFO)
    recovery_keys = secrets.derived_keys(secrets.RECOVERY_CODE_INFO)
    assert len(totp_keys) == len(recovery_keys) == 1 and len(totp_keys[0]) == 32
    assert totp_keys != recovery_keys
    assert app_ctx.config["SECRET_KEY"].encode() not in (totp_keys[0], recovery_keys[0])


def test_sealed_under_the_current_key_opened_under_a_fallback_as_stale(make_app):
    with make_app(SECRET_KEY=OLD_KEY).app_context():
        sealed = secrets.seal("JBSWY3DPEHPK3PXP")
        assert secrets.open_sealed(sealed) == secrets.OpenedSecret("JBSWY3DPEHPK3PXP", stale=False)
    with make_app(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]).app_context():
        assert secrets.open_sealed(sealed) == secrets.OpenedSecret("JBSWY3DPEHPK3PXP", stale=True)
        assert secrets.open_sealed(secrets.seal("JBSWY3DPEHPK3PXP")).stale is False
    with make_app(SECRET_KEY=NEW_KEY).app_context(), pytest.raises(InvalidToken):
        secrets.open_sealed(sealed)
