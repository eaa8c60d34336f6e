"""OpenID Connect Back-Channel Logout 1.0: an outbox filled with the revocation, emptied by the worker."""

import secrets
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.oauth import keys
from app.oauth.claims import subject
from app.oauth.models import LogoutDelivery, OAuthClient
from app.outbox import services as outbox
from app.outbox.services import Outcome, RetryPolicy

LOGOUT_TOKEN_TYP = "logout+jwt"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL_SECONDS = 120
DELIVERY_TIMEOUT_SECONDS = 3
MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 300
BATCH_SIZE = 50
RETRY = RetryPolicy(MAX_ATTEMPTS, MAX_BACKOFF_SECONDS)


def enqueue(revoked_grants, now: datetime) -> int:
    """Queue one logout per revoked grant whose client listens, in the revoking transaction."""
    client_ids = {row.client_id for row in revoked_grants}
    listening = dict(
        db.session.execute(
            select(OAuthClient.id, OAuthClient.backchannel_logout_uri).where(
                OAuthClient.id.in_(client_ids), OAuthClient.backchannel_logout_uri.is_not(None)
            )
        )
        .tuples()
        .all()
    )
    deliveries = [
        LogoutDelivery(
            client_id=row.client_id,
            sid=row.public_id,
            sub=subject(row.user_id),
            uri=listening[row.client_id],
            created_at=now,
            next_attempt_at=now,
        )
        for row in revoked_grants
        if row.client_id in listening
    ]
    db.session.add_all(deliveries)
    return len(deliveries)


def logout_token(delivery: LogoutDelivery, now: datetime) -> str:
    """Back-Channel Logout §2.4: iss, aud, iat, exp, jti, sid, sub, events; never a nonce."""
    issued = int(now.timestamp())
    claims = {
        "iss": current_app.config["ISSUER"],
        "aud": delivery.client.client_id,
        "iat": issued,
        "exp": issued + LOGOUT_TOKEN_TTL_SECONDS,
        "jti": secrets.token_urlsafe(16),
        "sid": delivery.sid,
        "sub": delivery.sub,
        "events": {LOGOUT_EVENT: {}},
    }
    return keys.sign(claims, LOGOUT_TOKEN_TYP, now)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is answered as an HTTPError: the token goes only to the registered URI (never to wherever a
    receiver points), and the delivery counts as failed and is retried."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def _post(uri: str, token: str) -> int:
    body = urllib.parse.urlencode({"logout_token": token}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    # The URI was checked at registration: https, or http on a loopback host; never file: or custom schemes.
    request = urllib.request.Request(uri, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        timeout = current_app.config.get("BACKCHANNEL_TIMEOUT_SECONDS", DELIVERY_TIMEOUT_SECONDS)
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def deliver_due(now: datetime, limit: int = BATCH_SIZE) -> int:
    """Send each due logout once (app.outbox: one transaction apiece, exponential backoff). Returns how many
    were delivered."""
    return outbox.deliver_due(LogoutDelivery, _attempt, RETRY, now, limit)


def _attempt(delivery: LogoutDelivery, now: datetime) -> Outcome:
    try:
        status = _post(delivery.uri, logout_token(delivery, now))
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable: the revocation stands regardless
        return Outcome(error=type(exc).__name__)
    return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")
