"""Connected apps: which apps each device signed into, and disconnecting them (per device or everywhere)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.oauth import grants
from app.oauth.clients import find as find_client
from app.oauth.models import OAuthClient, OAuthGrant


class UnknownApp(LookupError):
    """Not a live grant or app of this user (the same answer for someone else's)."""


@dataclass(frozen=True)
class ConnectedApp:
    client_id: str
    name: str
    devices: int
    first_connected: datetime


def _live(user_id: int, now: datetime):
    return select(OAuthGrant).where(
        OAuthGrant.user_id == user_id, OAuthGrant.revoked_at.is_(None), OAuthGrant.expires_at >= now
    )


def grants_by_session(user_id: int, now: datetime) -> dict[int, list[OAuthGrant]]:
    """Live grants of the user keyed by the portal session that approved them."""
    by_session = defaultdict(list)
    for grant in db.session.scalars(_live(user_id, now).order_by(OAuthGrant.created_at)):
        by_session[grant.issuer_session_id].append(grant)
    return by_session


def apps_of(user_id: int, now: datetime) -> list[ConnectedApp]:
    live = _live(user_id, now).subquery()
    rows = db.session.execute(
        select(OAuthClient.client_id, OAuthClient.name, func.count(), func.min(live.c.created_at))
        .join(live, live.c.client_id == OAuthClient.id)
        .group_by(OAuthClient.id)
        .order_by(OAuthClient.name)
    )
    return [ConnectedApp(*row) for row in rows]


def owned_grant(user_id: int, public_id: str) -> OAuthGrant:
    """A live grant of this user; anyone else's reads exactly like an unknown one."""
    grant = OAuthGrant.by_public_id(public_id)
    if grant is None or grant.user_id != user_id or grant.revoked_at is not None:
        raise UnknownApp(public_id)
    return grant


def connected_client(user_id: int, client_id: str, now: datetime) -> ConnectedApp:
    """An app this user has live grants with (what "Disconnect everywhere" would end)."""
    for app in apps_of(user_id, now):
        if app.client_id == client_id:
            return app
    raise UnknownApp(client_id)


def disconnect_grant(user_id: int, public_id: str, now: datetime) -> str:
    """End one app's access from one device; return the app's name."""
    grant = owned_grant(user_id, public_id)
    grants.revoke_grants(OAuthGrant.id == grant.id, reason=grants.REASON_DISCONNECTED, now=now)
    audit.record(EventTag.GRANT_DISCONNECT, user_id=user_id, grant=public_id, client=grant.client.client_id)
    return grant.client.name


def disconnect_app(user_id: int, client_id: str, now: datetime) -> tuple[str, int]:
    """End an app's access from every device; return its name and how many grants ended."""
    client = find_client(client_id)
    if client is None:
        raise UnknownApp(client_id)
    ended = grants.revoke_grants(
        OAuthGrant.user_id == user_id, OAuthGrant.client_id == client.id, reason=grants.REASON_DISCONNECTED, now=now
    )
    if not ended:
        raise UnknownApp(client_id)
    audit.record(EventTag.GRANT_DISCONNECT, user_id=user_id, client=client_id, count=len(ended))
    return client.name, len(ended)
