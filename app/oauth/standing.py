"""Does a grant still stand? The one answer the grant check (app/client_api) and introspection (RFC 7662) give, kept in
the cache (app/oauth/verify_cache) by the grant token's digest and by the grant's public id (an access token's
`sid`): a warm answer reads no database. Every revocation tombstones both keys once it commits
(verify_cache.revoked); an active answer is kept no longer than the portal session could stay idle, nor past the
grant's expiry."""

from datetime import datetime

from flask import current_app

from app.oauth import grants, verify_cache
from app.oauth.claims import subject
from app.oauth.models import OAuthGrant


def answer(grant: OAuthGrant, now: datetime) -> tuple[dict, int]:
    """The cacheable answer about a grant, and for how many seconds it may be cached. A portal session found past
    its expiry ends here, with its grants (grants.state): the caller commits."""
    cache_ttl = current_app.config["SESSION_CACHE_TTL_SECONDS"]
    current = grants.state(grant, now)
    if current == grants.ACTIVE and grant.client.disabled_at is not None:
        current = grants.REVOKED  # disabling revokes the grants in the same transaction: this holds between
    if current != grants.ACTIVE:
        # Final: a revoked or expired grant never stands again, so this answer may be cached as long as any.
        return {"active": False, "reason": current, "client": grant.client_id}, cache_ttl
    session = grant.issuer_session
    assert session is not None, "grants.state answers ACTIVE only while the approving session lives"
    active = {
        "active": True,
        "sub": subject(grant.user_id),
        "client_id": grant.client.client_id,
        "device_id": grant.device_id,
        "expires_at": grant.expires_at.isoformat(),
        "client": grant.client_id,
    }
    # Revocations tombstone the entry at once; the portal session's idle expiry would not, so it bounds the entry.
    horizon = min(session.idle_expires_at, grant.expires_at)
    return active, min(cache_ttl, int((horizon - now).total_seconds()))


def stands(cached: dict, now: datetime) -> bool:
    """An answer still says active: not revoked, and the grant not past its expiry."""
    return cached["active"] and now <= datetime.fromisoformat(cached["expires_at"])


def by_public_id(public_id: str, now: datetime) -> dict | None:
    """The answer about the grant an access token's `sid` names, from the cache or else the database (then cached);
    None for no such grant."""
    cached = verify_cache.get_by_public_id(public_id)
    if cached is not None:
        return cached
    grant = OAuthGrant.by_public_id(public_id)
    if grant is None:
        return None
    found, ttl = answer(grant, now)
    verify_cache.put_by_public_id(public_id, found, ttl)
    return found
