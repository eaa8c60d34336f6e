"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): redirect only when everything checks out."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from app.oauth import claims, keys
from app.oauth.clients import find as find_client
from app.sessions.services import ActiveSession


class LogoutRefused(Exception):
    """The request contradicts itself: neither acted on nor redirected, shown as an error page."""


@dataclass(frozen=True)
class LogoutPlan:
    sign_out: bool  # end this browser's portal session now
    redirect_to: str | None  # None: show the confirmation page instead (no redirect, no silent logout)
    client_name: str | None = None


def plan(id_token_hint: str | None, client_id: str | None, redirect_uri: str | None, state: str | None,
         session: ActiveSession | None, now: datetime) -> LogoutPlan:  # fmt: skip
    """A valid hint of ours, naming the signed-in user, plus a URI registered for the hint's client: sign out and
    go back. Anything less (missing or altered hint, unregistered URI): ask the user first (catalogue #22).
    A client_id that is not the hint's audience: refused (LogoutRefused)."""
    hint = _hint(id_token_hint, now)
    # RP-Initiated Logout 1.0 §2: with both, "the OP MUST verify that the Client Identifier matches the one used
    # when issuing the ID Token". Our ID tokens have a single audience, the client's id (claims.id_token).
    if hint and client_id is not None and client_id != hint.get("aud"):
        raise LogoutRefused("The application that asked to sign you out is not the one this sign-in was issued to.")
    if not hint:
        return LogoutPlan(sign_out=False, redirect_to=None)
    client = find_client(hint.get("aud"))
    if client is None or client.disabled_at is not None:
        return LogoutPlan(sign_out=False, redirect_to=None)
    same_user = session is None or hint.get("sub") == claims.subject(session.user_id)
    registered = redirect_uri in client.post_logout_redirect_uris
    if not (registered and same_user):
        return LogoutPlan(sign_out=False, redirect_to=None, client_name=client.name)
    location = _with_state(redirect_uri, state) if redirect_uri else None
    return LogoutPlan(sign_out=session is not None, redirect_to=location, client_name=client.name)


def _with_state(uri: str, state: str | None) -> str:
    """RP-Initiated Logout §3: only `state` is added (RFC 9207's `iss` is for authorization responses)."""
    if state is None:
        return uri
    return uri + ("&" if urlsplit(uri).query else "?") + urlencode({"state": state})


def _hint(token: str | None, now: datetime) -> dict | None:
    if not token:
        return None
    try:
        return keys.verify(token, claims.ID_TOKEN_TYP, now, allow_expired=True)
    except keys.InvalidJWT:
        return None
