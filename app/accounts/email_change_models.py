"""E-mail changes waiting for the new address to confirm them (DESIGN §10): only a digest of each link is kept."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model, db
from app.types import UTCDateTime


class EmailChange(Model):
    __tablename__ = "email_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The address the link replaces: a change made meanwhile (another link, an operator) makes the link stale.
    old_email: Mapped[str] = mapped_column(String(254))
    new_email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def by_token_hash(cls, token_hash: str) -> "EmailChange | None":
        return db.session.scalar(select(cls).where(cls.token_hash == token_hash))

    @classmethod
    def newest_for(cls, user_id: int) -> "EmailChange | None":
        """The user's latest request: the only one whose link can still work."""
        return db.session.scalar(select(cls).where(cls.user_id == user_id).order_by(cls.id.desc()).limit(1))

    def use(self, now: datetime) -> bool:
        """Spend the link in one conditional statement: of two concurrent confirmations, only one gets True."""
        spent = db.session.execute(
            update(EmailChange)
            .where(EmailChange.id == self.id, EmailChange.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return spent.rowcount == 1  # type: ignore[attr-defined]
