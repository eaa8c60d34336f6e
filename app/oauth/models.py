"""OAuth clients, grants, authorization codes, refresh tokens and signing keys (DESIGN §2, §5)."""

import functools
from datetime import datetime
from typing import cast

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    ForeignKey,
    Index,
    Row,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import sqlite_writers
from app.accounts.models import User
from app.extensions import Model, db
from app.oauth import tokens
from app.outbox.models import OutboxRow
from app.security import identifiers
from app.sessions.models import UserSession
from app.types import UTCDateTime

LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s'"


def _begin_write() -> Connection:
    """The request's connection, ready to write under a lock. SQLite: BEGIN IMMEDIATE takes the database's one write
    lock now, waiting for it in line (app.sqlite_writers), rather than at a later write that may fail to upgrade a
    read. PostgreSQL: row locks do the work, and a held one answers 503 after lock_timeout rather than hang
    (catalogue #58; this transaction only: elsewhere a lock wait is not ours to cut short)."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        assert driver is not None  # a checked-out connection always has its DB-API connection
        if not driver.in_transaction:
            sqlite_writers.enter(connection)
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql(LOCK_TIMEOUT)
    return connection


def _one_locked(statement):
    """The row lock of DESIGN §5: SELECT … FOR UPDATE on PostgreSQL; on SQLite an immediate transaction."""
    if _begin_write().dialect.name == "sqlite":
        return db.session.scalar(statement)
    return db.session.scalar(statement.with_for_update())


def _one(statement, lock: bool):
    return _one_locked(statement) if lock else db.session.scalar(statement)


class OAuthClient(Model, ClientMixin):
    """A registered client; Authlib's ClientMixin is how the server's grants and endpoints ask about it."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC-SHA256 with a server-side pepper: secrets are 256-bit random, so a slow hash buys nothing.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    first_party: Mapped[bool] = mapped_column(default=False)
    redirect_uris: Mapped[list] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    scopes: Mapped[str] = mapped_column(String(255))
    grant_types: Mapped[list] = mapped_column(JSON)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None

    @property
    def scope_set(self) -> set[str]:
        return set(self.scopes.split())

    @classmethod
    def by_client_id(cls, client_id: str) -> "OAuthClient | None":
        return db.session.scalar(select(cls).where(cls.client_id == client_id))

    # Authlib's ClientMixin: our registration rules, asked by Authlib's server.

    @property
    def client_metadata(self) -> dict:
        """The registration as Authlib's endpoints read it (RFC 7591 names): the RP-initiated logout endpoint asks
        for post_logout_redirect_uris; userinfo is never signed (no userinfo_signed_response_alg)."""
        return {"post_logout_redirect_uris": self.post_logout_redirect_uris}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # DESIGN §5: redirect_uri is required, never defaulted from the registration

    def get_allowed_scope(self, scope: str) -> str:
        """The requested scopes this client is registered for, in the order asked."""
        return " ".join(s for s in dict.fromkeys((scope or "").split()) if s in self.scope_set)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        from app.oauth.authorize import redirect_uri_registered  # authorize imports this module

        return redirect_uri_registered(self, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        # Stored as keyed digests only (STYLE rule 6); a public client has none, so no secret matches.
        return not self.is_public and tokens.client_secret_matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """RFC 6749 §2.3: a public client authenticates with its id alone, a confidential one with its secret."""
        return method == "none" if self.is_public else method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"  # DESIGN §5: no implicit or hybrid flow

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class OAuthGrant(Model):
    """One per (user, client, approving portal session, client device id)."""

    __tablename__ = "oauth_grants"
    __table_args__ = (Index("ix_oauth_grants_lookup", "user_id", "client_id", "issuer_session_id", "device_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)  # the ID token's `sid`
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    issuer_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="SET NULL"), index=True
    )
    device_id: Mapped[str | None] = mapped_column(String(128), index=True)
    scope: Mapped[str] = mapped_column(String(255))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    auth_methods: Mapped[str] = mapped_column(String(32), default="pwd", server_default="pwd")  # the session's
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the issuing session's absolute expiry
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    user: Mapped[User] = relationship()
    client: Mapped[OAuthClient] = relationship()
    issuer_session: Mapped[UserSession | None] = relationship()

    @classmethod
    def live_for(cls, client_id: int, session_id: int, device_id: str | None) -> "OAuthGrant | None":
        """The live grant of (client, approving session, device). The session's row is locked first, so that two
        first authorizations racing from one session and device cannot both find none and create two."""
        _one_locked(select(UserSession.id).where(UserSession.id == session_id))
        return db.session.scalar(
            select(cls).where(
                cls.client_id == client_id,
                cls.issuer_session_id == session_id,
                cls.device_id.is_(None) if device_id is None else cls.device_id == device_id,
                cls.revoked_at.is_(None),
            )
        )

    @classmethod
    def connected(cls, user_id: int, client_id: int, now: datetime) -> bool:
        """Whether the user has a live grant with this client on any device (the app is listed as connected)."""
        live = select(cls.id).where(
            cls.user_id == user_id, cls.client_id == client_id, cls.revoked_at.is_(None), cls.expires_at >= now
        )
        return db.session.scalar(select(live.exists())) is True

    @classmethod
    def by_public_id(cls, public_id: str) -> "OAuthGrant | None":
        if not identifiers.is_public_id(public_id):
            return None  # DESIGN §8: a malformed id never reaches a query; it reads as unknown
        return db.session.scalar(select(cls).where(cls.public_id == public_id))

    @classmethod
    def by_token_hash(cls, token_hash: str) -> "OAuthGrant | None":
        return db.session.scalar(select(cls).where(cls.token_hash == token_hash))

    @classmethod
    def revoke_where(cls, *criteria, at: datetime, reason: str) -> list:
        """Revoke every live grant matching criteria in one statement; return (id, public_id, token_hash,
        client_id, user_id) of each, for cache invalidation and back-channel logout."""
        result = db.session.execute(
            update(cls)
            .where(cls.revoked_at.is_(None), *criteria)
            .values(revoked_at=at, revoked_reason=reason)
            .returning(cls.id, cls.public_id, cls.token_hash, cls.client_id, cls.user_id)
            .execution_options(synchronize_session=False)
        )
        return list(result)


class AuthorizationCode(Model, AuthorizationCodeMixin):
    """Single use, kept after use so that a replay can revoke what the first use issued."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(String(255))
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    grant: Mapped[OAuthGrant] = relationship()

    @classmethod
    def by_code_hash(cls, code_hash: str, *, lock: bool = False) -> "AuthorizationCode | None":
        return _one(select(cls).where(cls.code_hash == code_hash), lock)

    # Authlib's AuthorizationCodeMixin, asked by the code exchange (RFC 6749 §4.1.3).

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class RefreshToken(Model):
    __tablename__ = "oauth_refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    chain_id: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rotated_to: Mapped[int | None] = mapped_column(ForeignKey("oauth_refresh_tokens.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    grant: Mapped[OAuthGrant] = relationship()

    @classmethod
    def by_token_hash(cls, token_hash: str, *, lock: bool = False) -> "RefreshToken | None":
        return _one(select(cls).where(cls.token_hash == token_hash), lock)

    @classmethod
    def live_for_rotation(cls, token_hash: str, client_id: int, now: datetime) -> Row | None:
        """The refresh token that may rotate now, with what its tokens say about the grant, in one joined read
        without a lock (the compare-and-set in rotate decides): unrotated, unrevoked and unexpired, of this client,
        its grant neither revoked nor expired, its portal session neither revoked nor past its idle or absolute
        expiry (what grants.state calls active). None for anything else, which the locked path then explains."""
        parameters = {"h": token_hash, "c": client_id, "t": now}
        return db.session.connection().execute(_live_for_rotation(), parameters).first()

    @classmethod
    def rotate(cls, token_id: int, successor_hash: str, *, grant_id: int, chain_id: str, scope: str,
               now: datetime, expires_at: datetime, note_refreshed: bool) -> bool:  # fmt: skip
        """DESIGN §5's rotation: a compare-and-set marks the predecessor rotated only while it is neither rotated
        nor revoked (under the row lock on PostgreSQL, the write lock BEGIN IMMEDIATE takes on SQLite), so of two
        racing rotations one marks it and the other finds it taken; only then is the successor stored and linked,
        and (note_refreshed) the grant's last refresh written. False when the compare-and-set found the predecessor
        taken: nothing was written. PostgreSQL runs it all as one statement (the successor's id drawn first, so the
        compare-and-set links it), SQLite as three or four."""
        connection = _begin_write()
        parameters = {"i": token_id, "h": successor_hash, "g": grant_id, "c": chain_id, "s": scope, "t": now,
                      "e": expires_at, "note": note_refreshed}  # fmt: skip
        if connection.dialect.name == "postgresql":
            return connection.execute(_ROTATE_POSTGRESQL, parameters).first() is not None
        if connection.execute(_mark_rotated(), parameters).rowcount != 1:
            return False
        successor = connection.execute(_insert_successor(), parameters).scalar_one()
        connection.execute(_link_successor(), {"i": token_id, "n": successor})
        if note_refreshed:
            connection.execute(_note_refreshed(), parameters)
        return True


class SigningKey(Model):
    """RS256 keys; the private half encrypted with the app secret, the public half published in the JWKS."""

    __tablename__ = "oauth_signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # no longer signs; still verifies


class LogoutDelivery(OutboxRow, Model):
    """The back-channel logout outbox: queued with the revocation, delivered (and retried) by the worker."""

    __tablename__ = "oauth_logout_deliveries"
    __table_args__ = (Index("ix_oauth_logout_deliveries_due", "delivered_at", "failed_at", "next_attempt_at"),)

    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    sid: Mapped[str] = mapped_column(String(64))
    sub: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(String(2048))

    client: Mapped[OAuthClient] = relationship()


# The refresh's statements in SQLAlchemy Core, built once: the ORM's unit of work and loading cost more than the
# statements themselves on the hot path (issue 13).


def _table(model) -> Table:
    return cast(Table, model.__table__)


@functools.cache
def _live_for_rotation():
    token, grant, session = _table(RefreshToken).c, _table(OAuthGrant).c, _table(UserSession).c
    at = bindparam("t", type_=UTCDateTime())
    return (
        select(token.id.label("token_id"), token.chain_id, token.scope, token.grant_id, grant.public_id,
               grant.user_id, grant.auth_time, grant.auth_methods, grant.expires_at, grant.last_refreshed_at)
        .select_from(_table(RefreshToken).join(_table(OAuthGrant)).join(_table(UserSession)))
        .where(token.token_hash == bindparam("h"), token.rotated_at.is_(None), token.revoked_at.is_(None),
               token.expires_at >= at, grant.client_id == bindparam("c"), grant.revoked_at.is_(None),
               grant.expires_at >= at, session.revoked_at.is_(None), session.absolute_expires_at >= at,
               session.idle_expires_at >= at)
    )  # fmt: skip


@functools.cache
def _mark_rotated():
    token = _table(RefreshToken).c
    at = bindparam("t", type_=UTCDateTime())
    return (
        update(_table(RefreshToken))
        .where(token.id == bindparam("i"), token.rotated_at.is_(None), token.revoked_at.is_(None))
        .values(rotated_at=at, last_used_at=at)
    )


@functools.cache
def _insert_successor():
    token = _table(RefreshToken).c
    return (
        insert(_table(RefreshToken))
        .returning(token.id)
        .values(
            token_hash=bindparam("h"),
            grant_id=bindparam("g"),
            chain_id=bindparam("c"),
            scope=bindparam("s"),
            created_at=bindparam("t", type_=UTCDateTime()),
            expires_at=bindparam("e", type_=UTCDateTime()),
        )
    )


@functools.cache
def _link_successor():
    token = _table(RefreshToken).c
    return update(_table(RefreshToken)).where(token.id == bindparam("i")).values(rotated_to=bindparam("n"))


@functools.cache
def _note_refreshed():
    grant = _table(OAuthGrant).c
    at = bindparam("t", type_=UTCDateTime())
    return update(_table(OAuthGrant)).where(grant.id == bindparam("g")).values(last_refreshed_at=at)


# PostgreSQL: the compare-and-set, the successor (its id drawn by the compare-and-set, so the link needs no third
# statement: the foreign key is checked at the end of the statement, once the successor exists) and the grant's
# last refresh, in one statement. Nothing is written unless the compare-and-set marks the predecessor.
_ROTATE_POSTGRESQL = text(
    """
    WITH marked AS (
        UPDATE oauth_refresh_tokens
        SET rotated_at = :t, last_used_at = :t, rotated_to = nextval('oauth_refresh_tokens_id_seq')
        WHERE id = :i AND rotated_at IS NULL AND revoked_at IS NULL
        RETURNING rotated_to
    ), noted AS (
        UPDATE oauth_grants SET last_refreshed_at = :t WHERE id = :g AND :note AND EXISTS (SELECT FROM marked)
    )
    INSERT INTO oauth_refresh_tokens (id, token_hash, grant_id, chain_id, scope, created_at, expires_at)
    SELECT rotated_to, :h, :g, :c, :s, :t, :e FROM marked
    RETURNING id
    """
).bindparams(
    bindparam("t", type_=UTCDateTime()), bindparam("e", type_=UTCDateTime()), bindparam("note", type_=Boolean())
)
