"""Security events, written in the transaction of the change they record."""

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import JSON, ColumnElement, ForeignKey, String, exists, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.models import User
from app.extensions import Model, db
from app.types import UTCDateTime


class AuditEvent(Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("user_sessions.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    @classmethod
    def tagged(cls, tag: str) -> list["AuditEvent"]:
        return list(db.session.scalars(select(cls).where(cls.tag == tag).order_by(cls.id)))

    @classmethod
    def of_user(cls, user_id: int) -> list[ColumnElement[bool]]:
        """Criteria: the events about one person."""
        return [cls.user_id == user_id]

    @classmethod
    def of_account(
        cls, account_id: int, user_id: int | None = None, tags: Collection[str] | None = None
    ) -> list[ColumnElement[bool]]:
        """Criteria: the account's events, whether recorded with its id or only with one of its people's (sign-ins,
        devices and apps name the user alone); optionally one person's, optionally some tags."""
        people = select(User.id).where(User.account_id == account_id)
        criteria = [or_(cls.account_id == account_id, cls.user_id.in_(people))]
        if user_id is not None:
            criteria.append(cls.user_id == user_id)
        if tags is not None:
            criteria.append(cls.tag.in_(list(tags)))
        return criteria

    @classmethod
    def page(
        cls, criteria: list[ColumnElement[bool]], *, before: int | None, after: int | None, size: int
    ) -> tuple[list["AuditEvent"], bool, bool]:
        """Keyset paging on the id, newest first, never OFFSET: the events below `before` (older) or above `after`
        (newer), at most `size`; and whether older and newer ones exist beyond them."""
        query = select(cls).where(*criteria)
        if after is not None:
            rows = list(db.session.scalars(query.where(cls.id > after).order_by(cls.id).limit(size)))[::-1]
        else:
            bounded = query if before is None else query.where(cls.id < before)
            rows = list(db.session.scalars(bounded.order_by(cls.id.desc()).limit(size)))
        if not rows:
            return rows, False, False
        return rows, cls._any(criteria, cls.id < rows[-1].id), cls._any(criteria, cls.id > rows[0].id)

    @classmethod
    def _any(cls, criteria: list[ColumnElement[bool]], beyond: ColumnElement[bool]) -> bool:
        return bool(db.session.scalar(select(exists().where(*criteria, beyond))))

    @staticmethod
    def app_names(client_ids: Collection[str]) -> dict[str, str]:
        """The names of the apps events mention (they record the public client id), in one query."""
        from app.oauth.models import OAuthClient  # the oauth package records events: imported at call time

        rows = db.session.execute(
            select(OAuthClient.client_id, OAuthClient.name).where(OAuthClient.client_id.in_(client_ids))
        )
        return {client_id: name for client_id, name in rows}

    @staticmethod
    def device_names(session_ids: Collection[int]) -> dict[int, str]:
        """The device names of the sessions events mention, in one query."""
        from app.sessions.models import UserSession  # the sessions package records events: imported at call time

        rows = db.session.execute(
            select(UserSession.id, UserSession.device_name).where(UserSession.id.in_(session_ids))
        )
        return {session_id: name for session_id, name in rows}
