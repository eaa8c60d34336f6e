"""Grants bound to the approving portal session, and everything that revokes them (DESIGN §2, §5)."""

from datetime import datetime

from sqlalchemy import update

from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.oauth import backchannel, tokens, verify_cache
from app.oauth.models import OAuthClient, OAuthGrant, RefreshToken
from app.sessions.models import UserSession
from app.sessions.services import SessionEnded, end_if_expired

REASON_CODE_REPLAY = "code_replay"
REASON_REFRESH_REUSE = "refresh_token_reuse"
REASON_REVOKED_BY_CLIENT = "revoked_by_client"
REASON_DISCONNECTED = "disconnected_by_user"
REASON_CLIENT_DISABLED = "client_disabled"


ACTIVE, REVOKED, EXPIRED = "active", "revoked", "expired"


def state(grant: OAuthGrant, now: datetime) -> str:
    """The one answer to "does this grant still stand?", for tokens, introspection, userinfo and verify.

    A portal session past its idle or absolute expiry ends here even if its browser never comes back (and its
    grants with it); the caller commits. Client activity is not portal activity: the idle timeout is the device's.
    """
    session = grant.issuer_session
    if grant.revoked_at is not None or (session is not None and session.revoked_at is not None):
        return REVOKED
    if session is None or now > grant.expires_at:
        return EXPIRED
    try:
        end_if_expired(session, now)
    except SessionEnded:
        return EXPIRED
    return ACTIVE


def grant_for(
    user_id: int, client: OAuthClient, session: UserSession, device_id: str | None, scope: str, now: datetime
):
    """Reuse the live grant of (user, client, this portal session, device id), or create one."""
    grant = OAuthGrant.live_for(client.id, session.id, device_id)  # the session is the user's
    if grant is None:
        grant = OAuthGrant(
            public_id=tokens.new_token(""),
            token_hash=tokens.digest(tokens.new_token(tokens.GRANT_PREFIX)),  # replaced when a code is redeemed
            user_id=user_id,
            client_id=client.id,
            issuer_session_id=session.id,
            device_id=device_id,
            scope=scope,
            auth_time=session.authenticated_at,
            auth_methods=session.auth_methods,
            expires_at=session.absolute_expires_at,
            created_at=now,
        )
        db.session.add(grant)
    else:
        grant.scope = " ".join(sorted(set(grant.scope.split()) | set(scope.split())))
        grant.auth_time = session.authenticated_at
        grant.auth_methods = session.auth_methods
    db.session.flush()
    return grant


def issue_grant_token(grant: OAuthGrant) -> str:
    """A fresh grant token for the client (the previous one stops working); only its digest is kept."""
    value = tokens.new_token(tokens.GRANT_PREFIX)
    verify_cache.drop(grant.token_hash)
    grant.token_hash = tokens.digest(value)
    return value


def revoke_grants(*criteria, reason: str, now: datetime) -> list[int]:
    """Revoke the matching live grants and every refresh token they issued, in this transaction; queue their
    back-channel logouts in the same transaction and drop their cached verify answers once it commits."""
    revoked = OAuthGrant.revoke_where(*criteria, at=now, reason=reason)
    grant_ids = [row.id for row in revoked]
    if grant_ids:
        backchannel.enqueue(revoked, now)
        verify_cache.revoked(revoked)
        db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.grant_id.in_(grant_ids), RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
    return grant_ids


def on_sessions_ended(_app, *, session_ids: list[int], reason: str, now: datetime) -> None:
    """Receiver of sessions' session_ended signal: signing a portal session out revokes exactly the grants that
    session approved, recording the session's own reason (password_changed, idle_timeout, revoked_by_owner, …).
    Stored as given rather than as "session_ended:<reason>": both columns hold 32 characters, so a session's
    reason always fits in its grants' row, and it never collides with a grant's own reasons above."""
    revoke_grants(OAuthGrant.issuer_session_id.in_(session_ids), reason=reason, now=now)


def revoke_chain_for_reuse(token: RefreshToken, now: datetime) -> None:
    """RFC 9700 §4.14.2: a rotated refresh token presented again means theft; end the chain and its grant."""
    revoke_grants(OAuthGrant.id == token.grant_id, reason=REASON_REFRESH_REUSE, now=now)
    grant = token.grant
    audit.record(
        EventTag.REFRESH_TOKEN_REUSE,
        user_id=grant.user_id,
        chain=token.chain_id,
        grant=grant.public_id,
        client=grant.client.client_id,
    )
