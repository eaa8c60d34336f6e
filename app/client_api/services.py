"""The two questions client apps ask the portal: does my grant still stand, should this device sign in again?"""

from datetime import datetime

from sqlalchemy import select

from app.extensions import db
from app.oauth import standing, tokens, verify_cache
from app.oauth.clients import ClientIdentity
from app.oauth.models import OAuthGrant
from app.security import identifiers
from app.sessions.models import UserSession

UNKNOWN = {"active": False, "reason": "unknown"}
EXPIRED = {"active": False, "reason": "expired"}


class BadRequest(ValueError):
    """The body is not what the endpoint accepts (400)."""


def verify_grant(client: ClientIdentity, grant_token, now: datetime) -> dict:
    """DESIGN §6: another client's grant, a garbage token and an unknown one all read "unknown"."""
    if not isinstance(grant_token, str) or len(grant_token) > 200:
        raise BadRequest('"grant" must be a grant token string.')
    if not identifiers.is_grant_token(grant_token):
        return UNKNOWN
    token_hash = tokens.digest(grant_token)
    answer = verify_cache.get(token_hash) or _verify_from_database(token_hash, now)
    if answer.get("client", client.id) != client.id:
        return UNKNOWN
    if answer["active"] and now > datetime.fromisoformat(answer["expires_at"]):
        return EXPIRED
    return answer


def _verify_from_database(token_hash: str, now: datetime) -> dict:
    grant = OAuthGrant.by_token_hash(token_hash)
    if grant is None:
        return UNKNOWN
    answer, ttl = standing.answer(grant, now)
    if not answer["active"]:
        db.session.commit()  # an idle portal session found here has just ended, with its grants
    verify_cache.put(token_hash, answer, ttl)
    return answer


def public_answer(answer: dict) -> dict:
    """What the client sees: never our cache bookkeeping."""
    if answer["active"]:
        return {k: answer[k] for k in ("active", "sub", "client_id", "device_id", "expires_at")}
    return {"active": False, "reason": answer["reason"]}


def check_device(client: ClientIdentity, device_id, now: datetime) -> bool:
    """True when this device's last grant for this client was revoked and its user has signed in to the portal
    since (on a live session): the app may then try a silent prompt=none authorization."""
    if not identifiers.is_device_id(device_id):
        raise BadRequest('"device_id" must be 1 to 128 URL-safe characters.')
    last = db.session.scalar(
        select(OAuthGrant)
        .where(OAuthGrant.client_id == client.id, OAuthGrant.device_id == device_id)
        .order_by(OAuthGrant.created_at.desc(), OAuthGrant.id.desc())
        .limit(1)
    )
    if last is None or last.revoked_at is None:
        return False
    signed_in_since = (
        select(UserSession.id)
        .where(
            UserSession.user_id == last.user_id,
            UserSession.created_at >= last.revoked_at,
            UserSession.revoked_at.is_(None),
            UserSession.idle_expires_at >= now,
            UserSession.absolute_expires_at >= now,
        )
        .limit(1)
    )
    return db.session.scalar(signed_in_since) is not None
