"""The authorization endpoint's rules: validate, decide (login, consent, code), issue the code (DESIGN §5)."""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.accounts.services import has_second_factor
from app.accounts.two_step_policy import must_set_up
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.oauth import claims, grants, keys, tokens
from app.oauth.clients import find as find_client
from app.oauth.clients import is_loopback
from app.oauth.models import AuthorizationCode, OAuthClient, OAuthGrant
from app.oauth.scopes import SCOPES
from app.security import identifiers
from app.sessions import methods
from app.sessions.models import UserSession
from app.sessions.services import ActiveSession

MAX_STATE_LENGTH = 2048
MAX_NONCE_LENGTH = 512
MAX_ID_TOKEN_HINT_LENGTH = 8192  # our ID tokens are under 1 kB; anything far longer is not one of them
SINGLE_VALUED = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
                 "code_challenge_method", "prompt", "max_age", "device_id", "id_token_hint", "acr_values")  # fmt: skip
MAX_ACR_VALUES_LENGTH = 512
NOT_OUR_HINT = "id_token_hint is not an ID token issued here."
PROMPTS = {"none", "login", "consent"}
# RFC 3986 §3.2.3 port, as a browser would send it back: ASCII digits, no sign, no leading zero, 1 to 65535.
LOOPBACK_PORT = re.compile(r"[1-9][0-9]{0,4}")
MAX_PORT = 65535


class AuthorizationPage(OAuth2Error):
    """Cannot be sent to a valid redirect URI: shown as a page, never redirected (RFC 6749 §4.1.2.1)."""

    error = "invalid_request"
    status_code = 400


class AuthorizationError(OAuth2Error):
    """An error Authlib sends back to the client's redirect URI, with `state` and (RFC 9207) `iss`."""

    def __init__(self, error: str, description: str, redirect_uri: str):
        super().__init__(description=description, redirect_uri=redirect_uri, error=error)


@dataclass(frozen=True)
class AuthorizationRequest:
    client: OAuthClient
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset = field(default_factory=frozenset)
    max_age: int | None = None
    device_id: str | None = None
    id_token_hint: str | None = None
    acr_values: frozenset = field(default_factory=frozenset)


def parse(args) -> AuthorizationRequest:
    """Validate in the order RFC 6749 §4.1.2.1 asks: client and redirect URI first, as a page."""
    for name in SINGLE_VALUED:
        if len(args.getlist(name)) > 1 and name in ("client_id", "redirect_uri"):
            raise AuthorizationPage(f"The parameter {name} was sent more than once.")
    client = find_client(args.get("client_id"))
    if client is None or client.disabled_at is not None:
        raise AuthorizationPage("This application is not registered, or has been disabled.")
    redirect_uri = args.get("redirect_uri")
    if not redirect_uri:
        raise AuthorizationPage("The application did not say where to send you back (redirect_uri is required).")
    if not redirect_uri_registered(client, redirect_uri):
        raise AuthorizationPage("The application asked to send you to an address it has not registered.")
    state = args.get("state")
    return _parse_rest(args, client, redirect_uri, state)


def redirect_uri_registered(client: OAuthClient, uri: str) -> bool:
    """Exact string match (RFC 9700 §4.1.3): no case, encoding, userinfo or fragment leniency. The one exception,
    RFC 8252 §7.3: a native (public) client registered with a loopback IP literal and no port may use any port."""
    if uri in client.redirect_uris:
        return True
    return client.is_public and any(_same_but_the_port(registered, uri) for registered in client.redirect_uris)


def _same_but_the_port(registered: str, uri: str) -> bool:
    """`uri` is `registered` with ":<port>" inserted after the host, and nothing else differs: compared as strings,
    so that no parser's reading of "@", "\\", "#" or an odd port can make another host or path match."""
    parts = urlsplit(registered)
    if parts.scheme != "http" or parts.port is not None or parts.hostname == "localhost":
        return False
    if not is_loopback(parts.hostname) or "@" in parts.netloc:
        return False
    origin = f"http://{parts.netloc}"
    if not (registered.startswith(origin) and uri.startswith(origin + ":")):
        return False
    port = LOOPBACK_PORT.match(uri, len(origin) + 1)
    return port is not None and int(port.group()) <= MAX_PORT and uri[port.end() :] == registered[len(origin) :]


def _parse_rest(args, client: OAuthClient, redirect_uri: str, state: str | None) -> AuthorizationRequest:
    def fail(error: str, description: str):
        raise AuthorizationError(error, description, redirect_uri)

    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise AuthorizationPage("The state parameter is too long.")
    for name in SINGLE_VALUED:
        if len(args.getlist(name)) > 1:
            fail("invalid_request", f"The parameter {name} was sent more than once.")
    if "request" in args:
        fail("request_not_supported", "Request objects are not supported.")
    if "request_uri" in args:
        fail("request_uri_not_supported", "request_uri is not supported.")
    if args.get("response_type") != "code":
        fail("unsupported_response_type", "Only response_type=code is supported.")
    scope = _scope(args.get("scope", ""), client, fail)
    prompt = frozenset((args.get("prompt") or "").split())
    if not prompt <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        fail("invalid_request", "prompt must be none, login or consent (none alone).")
    nonce = args.get("nonce")
    if nonce is not None and (len(nonce) > MAX_NONCE_LENGTH or not _is_printable(nonce)):
        fail("invalid_request", "nonce must be at most 512 characters, without control characters.")
    device_id = args.get("device_id") or None
    if device_id is not None and not identifiers.is_device_id(device_id):
        fail("invalid_request", "device_id must be 1 to 128 URL-safe characters.")
    id_token_hint = args.get("id_token_hint") or None
    if id_token_hint is not None and len(id_token_hint) > MAX_ID_TOKEN_HINT_LENGTH:
        fail("invalid_request", NOT_OUR_HINT)
    acr_values = args.get("acr_values") or ""
    if len(acr_values) > MAX_ACR_VALUES_LENGTH or not _is_printable(acr_values):
        fail("invalid_request", "acr_values must be a short list of space-separated values.")
    return AuthorizationRequest(client, redirect_uri, scope, state, nonce, args.get("code_challenge"), prompt,
                                _max_age(args.get("max_age"), fail), device_id, id_token_hint,
                                frozenset(acr_values.split()))  # fmt: skip


def _scope(raw: str, client: OAuthClient, fail) -> str:
    requested = raw.split()
    if not requested:
        fail("invalid_scope", "Ask for at least one scope.")
    unknown = [s for s in requested if s not in SCOPES or s not in client.scope_set]
    if unknown:
        # Only names we know are echoed: an error_description is restricted to printable ASCII without '"' and '\\'
        # (RFC 6749 §4.1.2.1), and a name the client made up need not be.
        named = [s for s in unknown if s in SCOPES]
        fail("invalid_scope", "Scope not allowed for this application" + (f": {' '.join(named)}." if named else "."))
    return " ".join(dict.fromkeys(requested))


def check_code_challenge(args) -> None:
    """DESIGN §5 and ASVS 5.0 10.4.6: PKCE with S256 for every client; plain or a missing method is refused (the
    code grant's S256CodeChallenge runs this as Authlib's validate_code_challenge)."""
    challenge, method = args.get("code_challenge"), args.get("code_challenge_method")
    if not challenge:
        raise InvalidRequestError("code_challenge is required (PKCE with S256).")
    if method != "S256":
        raise InvalidRequestError("code_challenge_method must be S256.")
    if not identifiers.is_code_challenge(challenge):
        raise InvalidRequestError("code_challenge must be 43 base64url characters.")


def _is_printable(text: str) -> bool:
    """Free text we store and echo back (the nonce, in the ID token): no control characters (C0, DEL, C1), which
    a log line or PostgreSQL (NUL) would choke on."""
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def _max_age(raw: str | None, fail) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        fail("invalid_request", "max_age must be a whole number of seconds.")
    return int(raw)


LOGIN, REAUTHENTICATE, CONSENT = "login", "reauthenticate", "consent"


def decide(request: AuthorizationRequest, session: ActiveSession | None, now: datetime) -> str | None:
    """OIDC Core §3.1.2.1: what to ask the user first (LOGIN, REAUTHENTICATE or CONSENT), or None to issue the code;
    prompt=none answers with an error instead of asking."""
    silent = "none" in request.prompt

    def refuse(error: str, description: str):
        raise AuthorizationError(error, description, request.redirect_uri)

    try:
        someone_else = _hints_someone_else(request.id_token_hint, session, now)
    except keys.InvalidJWT:
        refuse("invalid_request", NOT_OUR_HINT)
    if someone_else:
        # OIDC Core §3.1.2.1 (id_token_hint): signed in as another user than the hint's is login_required to
        # prompt=none; otherwise the sign-in page (not a password check of the user signed in now).
        if silent:
            refuse("login_required", "The user id_token_hint names is not signed in.")
        return LOGIN
    if needs_login(request, session, now):
        if silent:
            refuse("login_required", "The user is not signed in.")
        return REAUTHENTICATE if session else LOGIN
    assert session is not None  # needs_login is true without one
    user = db.session.get(User, session.user_id)
    if silent and user is not None and must_set_up(user):
        # The owner requires two-step verification and this user has none yet: only a visible page can fix that.
        refuse("interaction_required", "The user must set up two-step verification first.")
    if needs_second_step(request, session, user):
        # OIDC Core §3.1.2.1 acr_values, in the spirit of RFC 9470 (step-up): sign in again, with the second step.
        if silent:
            refuse("interaction_required", "The app asks for two-step verification; the user must sign in again.")
        return REAUTHENTICATE
    if "consent" in request.prompt or not has_consent(request, session.user_id):
        if silent:
            refuse("consent_required", "The user has not approved this app.")
        return CONSENT
    return None


def carried(params) -> dict:
    """The request as carried through sign-in and consent: prompt=login/consent and max_age are satisfied by then."""
    kept = {k: params.get(k) for k in SINGLE_VALUED if params.get(k) is not None and k != "max_age"}
    if "prompt" in kept:
        kept["prompt"] = " ".join(p for p in kept["prompt"].split() if p not in ("login", "consent"))
    return {k: v for k, v in kept.items() if v != ""}


def _hints_someone_else(id_token_hint: str | None, session: ActiveSession | None, now: datetime) -> bool:
    """The hint must be an ID token we issued (our keys, RS256, typ JWT); expired is fine, as the relying party
    sends the one it holds (OIDC Core §3.1.2.1: "the ID Token previously issued by the Authorization Server")."""
    if id_token_hint is None:
        return False
    hinted = keys.verify(id_token_hint, claims.ID_TOKEN_TYP, now, allow_expired=True)
    return session is not None and hinted.get("sub") != claims.subject(session.user_id)


def needs_login(request: AuthorizationRequest, session: ActiveSession | None, now: datetime) -> bool:
    if session is None or "login" in request.prompt:
        return True
    return request.max_age is not None and now - session.authenticated_at > timedelta(seconds=request.max_age)


def needs_second_step(request: AuthorizationRequest, session: ActiveSession, user: User | None) -> bool:
    """The app asks for two-step verification (the only acr we can raise a session to) and this session signed in with
    one factor although the user has a second. A user without one gets the code, and its ID token says acr pwd: the
    app decides what to do with that (OIDC Core §2: acr_values is a request, not a demand)."""
    if methods.ACR_MFA not in request.acr_values or methods.is_multi_factor(session.auth_methods):
        return False
    return has_second_factor(user)


def _connecting(request: AuthorizationRequest, user_id: int, now: datetime) -> bool:
    """Without a consent page approved now (a first-party app shows none), an app connects when it gets access the
    person had not given it on any device, as /account/apps would show it. A silent request (prompt=none: the device
    check's re-authorization) is the app's doing, not the person's, and is never recorded as connecting."""
    return "none" not in request.prompt and not OAuthGrant.connected(user_id, request.client.id, now)


def has_consent(request: AuthorizationRequest, user_id: int) -> bool:
    """First-party apps need none; otherwise a live grant of this user to this app covering the scopes."""
    if request.client.first_party:
        return True
    scopes = db.session.scalars(
        select(OAuthGrant.scope).where(
            OAuthGrant.user_id == user_id, OAuthGrant.client_id == request.client.id, OAuthGrant.revoked_at.is_(None)
        )
    )
    granted = set().union(*(set(s.split()) for s in scopes))
    return set(request.scope.split()) <= granted


def save_code(
    request: AuthorizationRequest, code: str, session: ActiveSession, now: datetime, consented: bool = False
) -> None:
    """Create or reuse the grant of the approving portal session and device, and store the single-use code bound to
    everything the token request must repeat (client, redirect URI, PKCE challenge) and the ID token needs (nonce).
    consented: the person approved the consent page in this request."""
    approving = db.session.get(UserSession, session.id)
    assert approving is not None  # the registry check of this request found it live
    connecting = consented or _connecting(request, session.user_id, now)
    grant = grants.grant_for(session.user_id, request.client, approving, request.device_id, request.scope, now)
    if connecting:
        audit.record(EventTag.GRANT_CONNECT, user_id=session.user_id, session_id=session.id,
                     client=request.client.client_id, grant=grant.public_id)  # fmt: skip
    db.session.add(
        AuthorizationCode(
            code_hash=tokens.digest(code),
            grant_id=grant.id,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            created_at=now,
            expires_at=now + timedelta(seconds=current_app.config["AUTH_CODE_TTL_SECONDS"]),
        )
    )
    db.session.flush()
