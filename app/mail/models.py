"""The mail outbox: one rendered message per row, until the worker delivers it or gives up."""

from sqlalchemy import ColumnElement, Index, SQLColumnExpression, String, Text, func, or_, select
from sqlalchemy.orm import Mapped, aliased, mapped_column

from app.extensions import Model, db
from app.outbox.models import OutboxRow


class MailMessage(OutboxRow, Model):
    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_due", "delivered_at", "failed_at", "next_attempt_at"),
        # The people page's refused-mail column: the newest mail to each address, without reading the whole outbox.
        Index("ix_mail_outbox_recipient", "recipient", "id"),
    )

    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(255))
    template: Mapped[str] = mapped_column(String(64))
    # None once delivered or given up: a body may hold a single-use link, kept no longer than needed.
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)

    def settled(self) -> None:
        self.text_body = self.html_body = None

    @classmethod
    def newest(cls, limit: int) -> list["MailMessage"]:
        return list(db.session.scalars(select(cls).order_by(cls.id.desc()).limit(limit)))

    @classmethod
    def refusal_to(cls, recipient: SQLColumnExpression[str]) -> ColumnElement[str | None]:
        """A correlated column for lists of people: the receiving server's answer when the newest settled mail to
        this address was refused (RFC 5321 §4.2.1: a 5yz reply is permanent), else NULL; a later delivery clears it."""
        settled = aliased(cls)
        newest = (
            select(func.max(settled.id))
            .where(settled.recipient == recipient)
            .where(or_(settled.delivered_at.is_not(None), settled.failed_at.is_not(None)))
            .correlate_except(settled)  # the address is the outermost query's (two levels up): never joined in here
            .scalar_subquery()
        )
        refused = select(cls.last_error).where(cls.id == newest, cls.failed_at.is_not(None), cls.last_status >= 500)
        return refused.scalar_subquery()
