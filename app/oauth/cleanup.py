"""Delete what can never be used again, in batches, from the command line only (DESIGN §5)."""

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from app.extensions import db, rows_changed
from app.oauth.models import AuthorizationCode, OAuthGrant, RefreshToken

# Used codes are kept a little past their expiry so that a late replay still revokes what they issued.
CODE_KEEP_AFTER_EXPIRY = timedelta(hours=1)


def _delete_in_batches(model, condition, batch_size: int) -> int:
    """One short transaction per batch, so a large backlog never holds long locks."""
    total = 0
    while True:
        ids = select(model.id).where(condition).limit(batch_size).scalar_subquery()
        deleted = rows_changed(delete(model).where(model.id.in_(ids)))
        db.session.commit()
        total += deleted
        if deleted < batch_size:
            return total


def cleanup(now: datetime, retention: timedelta, batch_size: int) -> dict[str, int]:
    """Codes past expiry; refresh tokens rotated, revoked or expired longer ago than the retention (their
    reuse can no longer be told from an unknown token after that); grants revoked or expired as long."""
    horizon = now - retention
    codes = _delete_in_batches(AuthorizationCode, AuthorizationCode.expires_at < now - CODE_KEEP_AFTER_EXPIRY,
                               batch_size)  # fmt: skip
    tokens = _delete_in_batches(
        RefreshToken,
        or_(RefreshToken.rotated_at < horizon, RefreshToken.revoked_at < horizon, RefreshToken.expires_at < horizon),
        batch_size,
    )
    grants = _delete_in_batches(
        OAuthGrant, or_(OAuthGrant.revoked_at < horizon, OAuthGrant.expires_at < horizon), batch_size
    )
    return {"authorization_codes": codes, "refresh_tokens": tokens, "grants": grants}
