"""Portal sessions: one row per signed-in device."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import ColumnElement, func
from sqlalchemy.sql.elements import SQLColumnExpression

from app.accounts.models import User
from app.extensions import Model, db, rows_changed
from app.security import identifiers
from app.types import UTCDateTime


class KnownDevice(Model):
    """A device (the portal's device cookie) a user has signed in from: a sign-in from any other sends an alert."""

    __tablename__ = "known_devices"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @classmethod
    def remember(cls, user_id: int, device_id: str, now: datetime) -> bool:
        """Record that the user signed in from this device; True when it was new to them. One statement, INSERT …
        ON CONFLICT DO NOTHING on both databases: of two concurrent sign-ins from one new device exactly one inserts
        (PostgreSQL makes the other wait for it on the primary key), so one alert."""
        insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(cls)
            .values(user_id=user_id, device_id=device_id, first_seen_at=now)
            .on_conflict_do_nothing(index_elements=[cls.user_id, cls.device_id])
            .returning(cls.user_id)  # a row back only when inserted (an ORM insert's rowcount is -1 on psycopg)
        )
        return db.session.execute(statement).first() is not None

    @classmethod
    def forget(cls, user_id: int, device_id: str) -> None:
        """The user said a sign-in from this device was not theirs: the next one from it is new again (alerted)."""
        db.session.execute(delete(cls).where(cls.user_id == user_id, cls.device_id == device_id))


class UserSession(Model):
    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_live", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    device_name: Mapped[str] = mapped_column(String(120))
    user_agent: Mapped[str] = mapped_column(String(512))
    ip: Mapped[str] = mapped_column(String(45))
    location: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # How it signed in, RFC 8176 values (app/sessions/methods.py); a re-authentication replaces them.
    auth_methods: Mapped[str] = mapped_column(String(32), default="pwd", server_default="pwd")
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The idle window fixed at sign-in (or by an owner's "apply now"); activity slides by it.
    idle_minutes: Mapped[int]
    idle_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    user: Mapped[User] = relationship()

    @classmethod
    def by_public_id(cls, public_id: str) -> "UserSession | None":
        if not identifiers.is_public_id(public_id):
            return None  # DESIGN §8: a malformed id never reaches a query; it reads as unknown
        return db.session.scalar(select(cls).where(cls.public_id == public_id))

    @classmethod
    def live_for_user(cls, user_id: int, now: datetime) -> list["UserSession"]:
        """A user's sessions that are neither ended nor past an expiry, most recently active first."""
        return list(db.session.scalars(cls._live(now).where(cls.user_id == user_id).order_by(cls.last_used_at.desc())))

    @classmethod
    def live_in_account(cls, account_id: int, now: datetime) -> list["UserSession"]:
        return list(db.session.scalars(cls._live(now).where(cls.user_id.in_(cls._account_user_ids(account_id)))))

    @classmethod
    def _live(cls, now: datetime):
        # The app clock is bound as a parameter: database time never decides expiry (catalogue #43).
        return select(cls).where(cls.revoked_at.is_(None), cls.idle_expires_at >= now, cls.absolute_expires_at >= now)

    @classmethod
    def live_count_of(cls, user_id: SQLColumnExpression[int], now: datetime) -> ColumnElement[int]:
        """A correlated count of a user's live sessions (devices signed in), for lists of people read in one query."""
        return cls._live(now).with_only_columns(func.count(cls.id)).where(cls.user_id == user_id).scalar_subquery()

    @classmethod
    def last_used_of(cls, user_id: SQLColumnExpression[int]) -> ColumnElement[datetime]:
        """A correlated newest activity over a user's sessions, ended ones included, for lists of people."""
        return select(func.max(cls.last_used_at)).where(cls.user_id == user_id).scalar_subquery()

    @staticmethod
    def _account_user_ids(account_id: int):
        return select(User.id).where(User.account_id == account_id).scalar_subquery()

    @classmethod
    def in_account(cls, account_id: int):
        """Criterion: sessions of any user of the account (for one-statement bulk revocation)."""
        return cls.user_id.in_(cls._account_user_ids(account_id))

    @classmethod
    def reset_windows(cls, rows: list[dict]) -> None:
        """Bulk UPDATE by primary key (one executemany): new policy windows for live sessions."""
        if rows:
            db.session.execute(update(cls), rows)

    @classmethod
    def reauthenticated(cls, session_id: int, public_id: str, at: datetime | None, methods: str) -> bool:
        """A live session's sign-in proved again: a new public id and methods, and authentication time unless `at` is
        None (a factor proved on its own, the password's time standing) (False if it ended)."""
        values = {"public_id": public_id, "auth_methods": methods} | ({"authenticated_at": at} if at else {})
        changed = rows_changed(
            update(cls)
            .where(cls.id == session_id, cls.revoked_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return changed == 1

    @classmethod
    def record_activity(
        cls, session_id: int, at: datetime, idle_expires_at: datetime, not_after: datetime, idle_minutes: int
    ) -> bool:
        """Move activity forward once; concurrent requests of the same minute write only once, and a window computed
        under another idle policy than the row's (a stale cached state) is not written."""
        changed = rows_changed(
            update(cls)
            .where(
                cls.id == session_id,
                cls.revoked_at.is_(None),
                cls.last_used_at <= not_after,
                cls.idle_minutes == idle_minutes,
            )
            .values(last_used_at=at, idle_expires_at=idle_expires_at)
        )
        return changed == 1

    @classmethod
    def relabel_ended(cls, session_id: int, reason: str) -> bool:
        """An already ended session's reason becomes `reason` unless it already is; True when this call changed it.
        A conditional UPDATE, so of two concurrent calls one wins (the other waits for its row lock and then finds
        the reason set)."""
        changed = rows_changed(
            update(cls)
            .where(
                cls.id == session_id,
                cls.revoked_at.is_not(None),
                or_(cls.revoked_reason.is_(None), cls.revoked_reason != reason),
            )
            .values(revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return changed == 1

    @classmethod
    def end_where(cls, *criteria, at: datetime, reason: str) -> list[tuple[int, str, int]]:
        """End every live session matching criteria in one statement; return (id, public_id, user_id)."""
        result = db.session.execute(
            update(cls)
            .where(cls.revoked_at.is_(None), *criteria)
            .values(revoked_at=at, revoked_reason=reason)
            .returning(cls.id, cls.public_id, cls.user_id)
            .execution_options(synchronize_session=False)
        )
        return [tuple(row) for row in result]


def users_with_live_sessions(account_id: int, now: datetime) -> list[User]:
    """Users of an account signed in on at least one device, by name."""
    live = UserSession._live(now).with_only_columns(UserSession.user_id).where(UserSession.user_id == User.id)
    return list(
        db.session.scalars(select(User).where(User.account_id == account_id, live.exists()).order_by(User.name))
    )
