"""Password-reset links (DESIGN §10): only a digest of each link's token is kept."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model, db
from app.types import UTCDateTime


class PasswordReset(Model):
    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A keyed fingerprint of the password hash the link replaces: a changed password no longer matches it.
    password_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def by_token_hash(cls, token_hash: str) -> "PasswordReset | None":
        return db.session.scalar(select(cls).where(cls.token_hash == token_hash))

    def use(self, now: datetime) -> bool:
        """Spend the link in one conditional statement: of two concurrent uses, only one gets True."""
        spent = db.session.execute(
            update(PasswordReset)
            .where(PasswordReset.id == self.id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return spent.rowcount == 1  # type: ignore[attr-defined]
