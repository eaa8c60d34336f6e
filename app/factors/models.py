"""The authenticator-app and recovery-code tables."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    SQLColumnExpression,
    String,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model, db, rows_changed
from app.types import UTCDateTime


class TotpAuthenticator(Model):
    """A user's authenticator app (RFC 6238): pending until confirmed with one current code."""

    __tablename__ = "totp_authenticators"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(String(255))  # a Fernet token (app.factors.secrets), never the secret
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # NULL while enrolment is pending
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)  # the last accepted time step: replays refused
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    @classmethod
    def for_user(cls, user_id: int) -> "TotpAuthenticator | None":
        return db.session.scalar(select(cls).where(cls.user_id == user_id))

    @classmethod
    def confirmed_for_user(cls, user_id: int) -> "TotpAuthenticator | None":
        return db.session.scalar(select(cls).where(cls.user_id == user_id, cls.confirmed_at.is_not(None)))

    @classmethod
    def confirmed_user_ids(cls, user_ids: list[int]) -> set[int]:
        confirmed = select(cls.user_id).where(cls.user_id.in_(user_ids), cls.confirmed_at.is_not(None))
        return set(db.session.scalars(confirmed))

    @classmethod
    def confirmed_exists(cls, user_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
        """A correlated EXISTS, for lists of people read in one query (the security card's people list)."""
        return exists().where(cls.user_id == user_id, cls.confirmed_at.is_not(None))

    def claim_step(self, step: int, now: datetime) -> bool:
        """Compare-and-set: record `step` as used only if no equal or later step was, in one UPDATE, so of two
        requests with the same code exactly one passes (the second writer re-reads the row it waited for)."""
        claimed = (
            update(TotpAuthenticator)
            .where(
                TotpAuthenticator.id == self.id,
                or_(TotpAuthenticator.last_used_step.is_(None), TotpAuthenticator.last_used_step < step),
            )
            .values(last_used_step=step, last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        won = rows_changed(claimed) == 1
        db.session.expire(self, ["last_used_step", "last_used_at"])  # read back what the database holds
        return won


class RecoveryCode(Model):
    """One single-use recovery code, kept only as a keyed hash (app.factors.recovery)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256, hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def replace_all(cls, user_id: int, code_hashes: list[str], now: datetime) -> None:
        """A new set voids the old one, used codes included."""
        db.session.execute(delete(cls).where(cls.user_id == user_id))
        db.session.add_all(cls(user_id=user_id, code_hash=h, created_at=now) for h in code_hashes)
        db.session.flush()

    @classmethod
    def use(cls, user_id: int, code_hashes: list[str], now: datetime) -> bool:
        """Compare-and-set on used_at: of two concurrent uses of one code, exactly one changes the row. code_hashes:
        the code's hash under each configured key (SECRET_KEY and its fallbacks)."""
        claimed = (
            update(cls)
            .where(cls.user_id == user_id, cls.code_hash.in_(code_hashes), cls.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return rows_changed(claimed) == 1

    @classmethod
    def was_used(cls, user_id: int, code_hashes: list[str]) -> bool:
        used = select(cls.id).where(cls.user_id == user_id, cls.code_hash.in_(code_hashes), cls.used_at.is_not(None))
        return db.session.scalar(used.limit(1)) is not None

    @classmethod
    def remaining(cls, user_id: int) -> int:
        unused = select(func.count(cls.id)).where(cls.user_id == user_id, cls.used_at.is_(None))
        return db.session.execute(unused).scalar_one()

    @classmethod
    def unused_count_of(cls, user_id: SQLColumnExpression[int]) -> ColumnElement[int]:
        """A correlated count of unused codes, for lists of people read in one query."""
        return select(func.count(cls.id)).where(cls.user_id == user_id, cls.used_at.is_(None)).scalar_subquery()

    @classmethod
    def delete_for_user(cls, user_id: int) -> int:
        return rows_changed(delete(cls).where(cls.user_id == user_id))
