"""The WebAuthn credential and ceremony-challenge tables."""

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    LargeBinary,
    SQLColumnExpression,
    String,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model, db, rows_changed
from app.security import identifiers
from app.types import UTCDateTime

# WebAuthn L3 §5.1: a credential id is at most 1023 bytes; §5.4.3: a user handle at most 64.
MAX_CREDENTIAL_ID_BYTES = 1023
MAX_USER_HANDLE_BYTES = 64
MAX_NAME_LENGTH = 64

PURPOSE_REGISTER = "register"
PURPOSE_SIGN_IN = "sign_in"  # the discoverable path: no e-mail, no password, user unknown until the assertion
PURPOSE_SECOND_STEP = "second_step"  # after the password, for a known user
PURPOSES = (PURPOSE_REGISTER, PURPOSE_SIGN_IN, PURPOSE_SECOND_STEP)


class PasskeyCredential(Model):
    """A public-key credential registered by a user: the public key, never a secret (DESIGN §9)."""

    __tablename__ = "passkey_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)  # what pages see
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(MAX_CREDENTIAL_ID_BYTES), unique=True)
    # The user.id the authenticator stored with the credential; a discoverable assertion returns it (L3 §7.2 step 6).
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(MAX_USER_HANDLE_BYTES))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key, as attested
    sign_count: Mapped[int] = mapped_column(BigInteger)  # an unsigned 32-bit counter: beyond INTEGER
    transports: Mapped[list] = mapped_column(JSON)
    aaguid: Mapped[str] = mapped_column(String(36))
    backup_eligible: Mapped[bool]
    backed_up: Mapped[bool]
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def by_credential_id(cls, credential_id: bytes) -> "PasskeyCredential | None":
        if not 0 < len(credential_id) <= MAX_CREDENTIAL_ID_BYTES:
            return None
        return db.session.scalar(select(cls).where(cls.credential_id == credential_id))

    @classmethod
    def by_public_id(cls, user_id: int, public_id: str) -> "PasskeyCredential | None":
        """One of this user's credentials; another user's reads as unknown."""
        if not identifiers.is_public_id(public_id):
            return None  # DESIGN §8: a malformed id never reaches a query; it reads as unknown
        return db.session.scalar(select(cls).where(cls.user_id == user_id, cls.public_id == public_id))

    @classmethod
    def of_user(cls, user_id: int) -> list["PasskeyCredential"]:
        return list(db.session.scalars(select(cls).where(cls.user_id == user_id).order_by(cls.created_at, cls.id)))

    @classmethod
    def count_of(cls, user_id: SQLColumnExpression[int]) -> ColumnElement[int]:
        """A correlated count of a user's passkeys, for lists of people read in one query."""
        return select(func.count(cls.id)).where(cls.user_id == user_id).scalar_subquery()

    @classmethod
    def user_handle_of(cls, user_id: int) -> bytes | None:
        """The handle this user's credentials were made with, so that a new one is made for the same WebAuthn user."""
        return db.session.scalar(select(cls.user_handle).where(cls.user_id == user_id).order_by(cls.id).limit(1))

    @classmethod
    def record_use(cls, row_id: int, sign_count: int, backed_up: bool, at: datetime) -> bool:
        """Compare-and-set on the signature counter (L3 §7.2 step 21), in one UPDATE: the new count must exceed the
        stored one unless both are zero (an authenticator without a counter). Of two assertions racing with the same
        or lower count, only one changes the row."""
        accepted = (
            update(cls)
            .where(
                cls.id == row_id,
                or_(cls.sign_count < sign_count, (cls.sign_count == 0) & (sign_count == 0)),
            )
            .values(sign_count=sign_count, backed_up=backed_up, last_used_at=at)
            .execution_options(synchronize_session=False)
        )
        return rows_changed(accepted) == 1

    @classmethod
    def delete_one(cls, row_id: int) -> bool:
        return rows_changed(delete(cls).where(cls.id == row_id)) == 1


class PasskeyChallenge(Model):
    """One ceremony's challenge: single use, short-lived, bound to a purpose and (when known) a user. Kept as a
    SHA-256 digest; the caller holds the challenge itself as the ceremony's handle."""

    __tablename__ = "passkey_challenges"
    __table_args__ = (CheckConstraint("purpose IN ('register', 'sign_in', 'second_step')", name="purpose_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user_handle: Mapped[bytes | None] = mapped_column(LargeBinary(MAX_USER_HANDLE_BYTES))  # offered at registration
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    @classmethod
    def consume(cls, challenge_hash: str) -> "ConsumedChallenge | None":
        """Take the challenge out in one DELETE … RETURNING: of two requests presenting it, even concurrently, only
        one gets the row (on PostgreSQL the second DELETE waits for the first and then finds nothing). Whatever the
        caller then decides, the challenge is spent."""
        row = db.session.execute(
            delete(cls)
            .where(cls.challenge_hash == challenge_hash)
            .returning(cls.purpose, cls.user_id, cls.user_handle, cls.expires_at)
            .execution_options(synchronize_session=False)
        ).first()
        return None if row is None else ConsumedChallenge(*row)

    @classmethod
    def delete_expired(cls, now: datetime) -> int:
        """Housekeeping: challenges nobody came back with (the app clock decides expiry, never database time)."""
        return rows_changed(delete(cls).where(cls.expires_at < now))


class ConsumedChallenge(NamedTuple):
    """What a spent challenge was bound to."""

    purpose: str
    user_id: int | None
    user_handle: bytes | None
    expires_at: datetime
