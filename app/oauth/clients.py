"""Client registration, lookup, and the internal endpoints' Basic authentication (the OAuth endpoints'
client authentication is the server's: app/oauth/server.py)."""

import base64
import binascii
import functools
import ipaddress
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit

from app.cache import Invalidation, cache
from app.extensions import db
from app.invalidation.services import invalidate
from app.oauth import grants, tokens
from app.oauth.errors import ClientError, invalid_client
from app.oauth.models import OAuthClient, OAuthGrant
from app.oauth.scopes import SCOPES
from app.security import identifiers

GRANT_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
MAX_REDIRECT_URI_LENGTH = 2048


@dataclass(frozen=True)
class ClientIdentity:
    """What the internal endpoints and introspection need of a client; cacheable, so a warm grant check or
    introspection reads no database. It answers Authlib's client authentication as OAuthClient does."""

    id: int
    client_id: str
    secret_hash: str | None
    disabled: bool

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None

    def check_client_secret(self, client_secret: str) -> bool:
        return not self.is_public and tokens.client_secret_matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """RFC 6749 §2.3, as OAuthClient.check_endpoint_auth_method."""
        return method == "none" if self.is_public else method in ("client_secret_basic", "client_secret_post")


CLIENT_CACHE_PREFIX = "client:"
CLIENT_CACHE_TTL_SECONDS = 60


@dataclass(frozen=True)
class Registered:
    client: OAuthClient
    secret: str | None  # shown once, never stored


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: str) -> None:
    """Absolute, no fragment, https unless the host is this machine (RFC 9700 §2.1, RFC 8252 §7.3)."""
    parts = urlsplit(uri)
    if len(uri) > MAX_REDIRECT_URI_LENGTH or not parts.scheme or not parts.netloc or parts.fragment:
        raise ClientError(f"redirect URI must be absolute, without a fragment: {uri!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ClientError(f"redirect URI must use https (http only for loopback hosts): {uri!r}")
    if parts.scheme not in ("http", "https") or any(c.isspace() for c in uri):
        raise ClientError(f"redirect URI is not a usable web address: {uri!r}")


def register_client(
    name: str,
    redirect_uris: list[str],
    now: datetime,
    *,
    public: bool = False,
    first_party: bool = False,
    backchannel_logout_uri: str | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    scope: str = "openid profile email",
    client_credentials: bool = False,
) -> Registered:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ClientError("client name must be 1 to 120 characters")
    if not redirect_uris:
        raise ClientError("at least one --redirect-uri is required")
    for uri in [*redirect_uris, *(post_logout_redirect_uris or []), *filter(None, [backchannel_logout_uri])]:
        check_redirect_uri(uri)
    unknown = set(scope.split()) - set(SCOPES)
    if unknown:
        raise ClientError(f"unknown scopes: {', '.join(sorted(unknown))} (known: {', '.join(SCOPES)})")
    if public and client_credentials:
        raise ClientError("a public client cannot use client_credentials")
    secret = None if public else tokens.new_token(tokens.CLIENT_SECRET_PREFIX)
    client = OAuthClient(
        client_id="gh_" + secrets.token_urlsafe(12),
        secret_hash=tokens.client_secret_digests(secret)[0] if secret else None,
        name=name,
        first_party=first_party,
        redirect_uris=list(dict.fromkeys(redirect_uris)),
        post_logout_redirect_uris=list(post_logout_redirect_uris or []),
        scopes=" ".join(scope.split()),
        grant_types=[GRANT_CODE, GRANT_REFRESH] + ([GRANT_CLIENT_CREDENTIALS] if client_credentials else []),
        backchannel_logout_uri=backchannel_logout_uri,
        created_at=now,
    )
    db.session.add(client)
    db.session.flush()
    return Registered(client, secret)


def find(client_id: object) -> OAuthClient | None:
    """The one lookup by client id: a malformed id (DESIGN §8) is never sent to the database and reads as unknown."""
    return OAuthClient.by_client_id(client_id) if identifiers.is_client_id(client_id) else None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_client("Malformed Basic credentials.") from exc
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise invalid_client("Malformed Basic credentials.")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def authenticate_internal(credentials: tuple[str, str] | None) -> ClientIdentity:
    """HTTP Basic only (credentials from basic_credentials), confidential clients only; the identity comes from the
    cache when it can (the hot path)."""
    if credentials is None:
        raise invalid_client("Send the client credentials with HTTP Basic authentication.")
    client_id, secret = credentials
    identity = _identity(client_id)
    if identity is None or identity.disabled or identity.is_public:
        raise invalid_client()
    if not tokens.client_secret_matches(secret, identity.secret_hash):
        raise invalid_client()
    return identity


def enabled_identity(client_id: object) -> ClientIdentity | None:
    """The server's query_client (app/oauth/server.py) from the cache: a malformed id, an unknown client and a
    disabled one all read as unknown."""
    identity = _identity(client_id) if isinstance(client_id, str) else None
    return identity if identity is not None and not identity.disabled else None


def _identity(client_id: str) -> ClientIdentity | None:
    if not identifiers.is_client_id(client_id):  # before it names a cache key or reaches a query (DESIGN §8)
        return None
    raw = cache().get(CLIENT_CACHE_PREFIX + client_id)
    if raw is not None:
        return _parsed_identity(raw)
    client = OAuthClient.by_client_id(client_id)
    if client is None:
        return None
    identity = ClientIdentity(client.id, client.client_id, client.secret_hash, client.disabled_at is not None)
    cache().add(CLIENT_CACHE_PREFIX + client_id, json.dumps(asdict(identity)).encode(), CLIENT_CACHE_TTL_SECONDS)
    return identity


@functools.lru_cache(maxsize=1024)
def _parsed_identity(raw: bytes) -> ClientIdentity:
    """Parsed once per cached value (a frozen dataclass, safe to share): the grant check's hottest lookup."""
    return ClientIdentity(**json.loads(raw))


def disable(client: OAuthClient, now: datetime) -> int:
    """A disabled client is refused everywhere from the moment the change commits: its grants and refresh tokens are
    revoked in this transaction (back-channel logouts queued, cached grant checks tombstoned), so every access
    token it holds stops working too. Returns how many grants ended."""
    client.disabled_at = client.disabled_at or now
    ended = grants.revoke_grants(OAuthGrant.client_id == client.id, reason=grants.REASON_CLIENT_DISABLED, now=now)
    key = CLIENT_CACHE_PREFIX + client.client_id
    # Durable, and a stale marker rather than a delete: no instance keeps accepting the client from a stale entry,
    # nor from one a reader that read the client before this commit adds back.
    invalidate([Invalidation(key)])
    return len(ended)
