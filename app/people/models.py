"""Invitations to join an account (DESIGN §10): only a digest of each link's token is kept."""

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Row, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model, db, rows_changed
from app.mail.models import MailMessage
from app.security.identifiers import is_row_id
from app.types import UTCDateTime


class Invitation(Model):
    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint("role IN ('owner', 'member')", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # A resend replaces the digest: only the newest link works.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The person it became, and the newest mail sent for it (its delivery, or refusal, is shown to owners).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mail_outbox.id", ondelete="SET NULL"))

    @classmethod
    def by_token_hash(cls, token_hash: str) -> "Invitation | None":
        return db.session.scalar(select(cls).where(cls.token_hash == token_hash))

    @classmethod
    def of_account(cls, account_id: int, invitation_id: int) -> "Invitation | None":
        """One of the account's invitations; another account's reads as unknown."""
        if not is_row_id(invitation_id):
            return None
        return db.session.scalar(select(cls).where(cls.id == invitation_id, cls.account_id == account_id))

    @classmethod
    def pending_for(cls, account_id: int, email: str) -> "Invitation | None":
        """The account's invitation to this address that nobody accepted or cancelled yet (expired or not)."""
        return db.session.scalar(cls._pending(account_id).where(cls.email == email).limit(1))

    @classmethod
    def pending_with_mail(cls, account_id: int) -> list[Row[tuple["Invitation", MailMessage | None]]]:
        """The account's pending invitations, newest first, each with the newest mail sent for it, in one query."""
        query = (
            cls._pending(account_id)
            .add_columns(MailMessage)
            .outerjoin(MailMessage, MailMessage.id == cls.mail_id)
            .order_by(cls.created_at.desc(), cls.id.desc())
        )
        return list(db.session.execute(query))

    @classmethod
    def _pending(cls, account_id: int):
        return select(cls).where(cls.account_id == account_id, cls.accepted_at.is_(None), cls.cancelled_at.is_(None))

    def spend(self, token_hash: str, now: datetime) -> bool:
        """Accept through this link in one conditional statement: of two concurrent acceptances only one gets True;
        a link that a resend replaced, and a cancelled or expired invitation, get False."""
        standing = [Invitation.token_hash == token_hash, Invitation.expires_at > now]
        return self._update_if_pending(standing, accepted_at=now)

    def cancel(self, now: datetime) -> bool:
        """Cancel it unless it was accepted or cancelled meanwhile (one conditional statement, like spend)."""
        return self._update_if_pending([], cancelled_at=now)

    def _update_if_pending(self, criteria: list, **values) -> bool:
        pending = [Invitation.id == self.id, Invitation.accepted_at.is_(None), Invitation.cancelled_at.is_(None)]
        statement = update(Invitation).where(*pending, *criteria).values(**values)
        if rows_changed(statement.execution_options(synchronize_session=False)) != 1:
            return False
        db.session.refresh(self)
        return True
