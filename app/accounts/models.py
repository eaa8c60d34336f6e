"""Accounts (organizations) and their users."""

from datetime import datetime

from sqlalchemy import CheckConstraint, ColumnElement, ForeignKey, Row, String, delete, false, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model, db
from app.types import UTCDateTime

ROLE_OWNER = "owner"
ROLE_MEMBER = "member"
ROLES = (ROLE_OWNER, ROLE_MEMBER)


class Account(Model):
    __tablename__ = "accounts"
    __table_args__ = (
        # DESIGN §2: an account's own idle window can never outlast its absolute one.
        CheckConstraint(
            "idle_minutes IS NULL OR absolute_minutes IS NULL OR idle_minutes <= absolute_minutes",
            name="idle_within_absolute",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    idle_minutes: Mapped[int | None]
    absolute_minutes: Mapped[int | None]
    # DESIGN §9: set by an owner, everyone signing in needs a second factor (app.web.two_step_required).
    two_step_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    users: Mapped[list["User"]] = relationship(back_populates="account")

    @classmethod
    def by_name(cls, name: str) -> "Account | None":
        return db.session.scalar(select(cls).where(cls.name == name))

    @classmethod
    def lock(cls, account_id: int) -> None:
        """Lock the account's row until the transaction ends (SELECT … FOR UPDATE on PostgreSQL; SQLite has one
        writer at a time): changes to who runs the account (owners, invitations) take it before they count."""
        db.session.execute(select(cls.id).where(cls.id == account_id).with_for_update())


class User(Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('owner', 'member')", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # set: no sign-in, every session ended

    account: Mapped[Account] = relationship(back_populates="users")

    @property
    def is_owner(self) -> bool:
        return self.role == ROLE_OWNER

    @classmethod
    def by_email(cls, email: str) -> "User | None":
        return db.session.scalar(select(cls).where(cls.email == normalize_email(email)))

    @classmethod
    def in_account_with(cls, account_id: int, *columns: ColumnElement) -> list[Row]:
        """The account's people by name, each with the given (correlated) columns, in one query."""
        people = select(cls, *columns).where(cls.account_id == account_id).order_by(cls.name, cls.id)
        return list(db.session.execute(people))

    def lock_for_owner_change(self) -> None:
        """Before a change that could leave the account without an owner who can sign in (a demotion, disabling,
        removal): lock the account and read this user again, so the owners counted next cannot change until this
        transaction ends, and two such changes can never both pass on counts made before either was written."""
        Account.lock(self.account_id)
        db.session.refresh(self)

    def lock_for_factor_change(self) -> None:
        """Before removing a second factor: lock this user's row until the transaction ends (SELECT … FOR UPDATE on
        PostgreSQL), so that two removals at once cannot both count the other's factor as still there."""
        db.session.execute(select(User.id).where(User.id == self.id).with_for_update())

    def other_active_owners(self) -> int:
        """Owners of this user's account, other than this user, who can still sign in."""
        others = select(func.count(User.id)).where(
            User.account_id == self.account_id,
            User.id != self.id,
            User.role == ROLE_OWNER,
            User.disabled_at.is_(None),
        )
        return db.session.execute(others).scalar_one()

    def delete(self) -> None:
        """In one statement, so that the database's cascades (sessions, grants, refresh tokens) and SET NULLs
        (audit events) apply as declared."""
        db.session.execute(delete(User).where(User.id == self.id))
        db.session.expunge(self)


def normalize_email(email: str) -> str:
    """DESIGN §2: e-mail addresses are unique in lower case."""
    return email.strip().lower()
