"""The portal over HTTP: Authlib's Flask OAuth client for discovery, the authorization URL (PKCE S256, state, nonce),
the code exchange, userinfo, the JWKS and the end-session URL; the grant and device checks (DESIGN §6) on top."""

import base64
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping

import requests
from authlib.common.encoding import to_native
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from authlib.integrations.requests_client import OAuth2Session
from joserfc.jwk import RSAKey

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
JWKS_REFETCH_SECONDS = 10  # an unknown kid refetches the JWKS at most this often (a forged kid cannot flood the portal)
ALGORITHM = "RS256"
VERIFY_PATH = "/internal/grants/verify"
DEVICE_CHECK_PATH = "/internal/devices/check"
CLIENT_AUTH_METHOD = "client_secret_basic"
DISCOVERY_PATH = "/.well-known/openid-configuration"
ACCEPT_JSON = {"Accept": "application/json"}


class PortalUnavailable(Exception):
    """No usable answer: network error, timeout, 5xx, 429 (then retry_after), or a body that is not JSON."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PortalRefused(Exception):
    """A 4xx answer: bad client credentials, an invalid code or token."""

    def __init__(self, status: int, body: dict):
        super().__init__(f"{status} {body.get('error', '')}: {body.get('error_description', '')}".strip())
        self.status, self.body = status, body


def max_age(headers: Mapping) -> int:
    """RFC 9111 §5.2.2.1: seconds the answer may be reused; 0 when it may not be stored or says nothing."""
    directives = [d.strip().lower() for d in (headers.get("Cache-Control") or "").split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name == "max-age" and value.strip().isdigit():
            return int(value)
    return 0


def _retry_after(headers: Mapping) -> int | None:
    value = (headers.get("Retry-After") or "").strip()
    return int(value) if value.isdigit() else None


def _form_encoded_basic(client, method, uri, headers, body):
    """RFC 6749 §2.3.1: the id and secret are form-encoded before they are joined and base64-encoded; Authlib's own
    client_secret_basic joins them as they are, so this one is registered under that name in its place."""
    pair = f"{requests.utils.quote(client.client_id, safe='')}:{requests.utils.quote(client.client_secret, safe='')}"
    headers["Authorization"] = "Basic " + to_native(base64.b64encode(pair.encode()))
    return uri, headers, body


def _json_object(response: requests.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@contextlib.contextmanager
def _answers(what: str) -> Iterator[None]:
    """Authlib's and requests' failures as the kit's two: PortalRefused (4xx, an OAuth error) or PortalUnavailable."""
    try:
        yield
    except OAuthError as exc:  # RFC 6749 §5.2: the token endpoint's error answer
        raise PortalRefused(400, {"error": exc.error, "error_description": exc.description or ""}) from None
    except requests.HTTPError as exc:
        if exc.response is None:  # raised without an answer (raise_for_status always attaches one)
            raise PortalUnavailable(f"{what}: {exc}") from None
        status, headers = exc.response.status_code, exc.response.headers
        if status == 429 or status >= 500:
            raise PortalUnavailable(f"{what}: HTTP {status}", _retry_after(headers)) from None
        raise PortalRefused(status, _json_object(exc.response) or {}) from None
    except (requests.RequestException, ValueError, TypeError, RuntimeError) as exc:
        # No answer, one that is not a JSON object, or discovery without an endpoint Authlib needs (RuntimeError).
        raise PortalUnavailable(f"{what}: {exc}") from None


class OpenIDClient(FlaskOAuth2App):
    """Authlib's Flask OAuth 2.0 / OpenID Connect client, at its one narrow point: discovery must name the issuer."""

    def load_server_metadata(self) -> dict:
        if "_loaded_at" in self.server_metadata:
            return self.server_metadata
        metadata = super().load_server_metadata()
        issuer = self._server_metadata_url.removesuffix(DISCOVERY_PATH)
        if metadata.get("issuer") != issuer:  # OpenID Connect Discovery 1.0 §4.3: exactly the issuer asked
            self.server_metadata.clear()  # fetched again next time rather than kept
            raise PortalUnavailable(f"discovery names issuer {metadata.get('issuer')!r}, expected {issuer!r}")
        return metadata


class Portal:
    """One issuer and one client's credentials; metadata and keys are fetched on first use and kept."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, timeout: float = TIMEOUT_SECONDS,
                 scope: str = "openid profile email"):  # fmt: skip
        self.issuer, self.client_id, self._secret, self.timeout = issuer.rstrip("/"), client_id, client_secret, timeout
        self.oauth = OpenIDClient(
            FlaskIntegration("gatehouse"),
            name="gatehouse",
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=self.issuer + DISCOVERY_PATH,
            client_kwargs={
                "scope": scope,
                "code_challenge_method": "S256",
                "default_timeout": timeout,
                "token_endpoint_auth_method": CLIENT_AUTH_METHOD,
            },
            client_auth_methods=[(CLIENT_AUTH_METHOD, _form_encoded_basic)],
        )
        self._keys: dict[str, RSAKey] = {}
        self._keys_fetched = float("-inf")
        self.jwks_refetch_seconds = JWKS_REFETCH_SECONDS
        self._lock = threading.Lock()

    # -- Discovery and keys --------------------------------------------------------------------------------------

    def metadata(self) -> dict:
        """OpenID Connect Discovery 1.0 §4, through Authlib; kept once the issuer matched."""
        with _answers("discovery"):
            return self.oauth.load_server_metadata()

    def endpoint(self, name: str) -> str:
        url = self.metadata().get(name)
        if not isinstance(url, str):
            raise PortalUnavailable(f"discovery has no {name}")
        return url

    def signing_key(self, kid: str) -> RSAKey | None:
        """The portal's key with this kid; an unknown kid refetches the JWKS once (key rotation), at most every
        jwks_refetch_seconds (Authlib's parse_id_token refetches on every unknown kid, hence this lookup of ours)."""
        with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._keys_fetched >= self.jwks_refetch_seconds:
                self._keys_fetched = time.monotonic()
                with _answers("jwks"):
                    self._keys = self._usable_keys(self.oauth.fetch_jwk_set(force=True))
                key = self._keys.get(kid)
            return key

    @staticmethod
    def _usable_keys(jwks: dict) -> dict[str, RSAKey]:
        keys = {}
        for jwk in jwks.get("keys", []):
            usable = (
                jwk.get("kty") == "RSA" and jwk.get("use", "sig") == "sig" and jwk.get("alg", ALGORITHM) == ALGORITHM
            )
            if usable and isinstance(jwk.get("kid"), str):
                try:
                    keys[jwk["kid"]] = RSAKey.import_key(jwk)
                except (ValueError, TypeError):
                    log.warning("skipping an unreadable key in the portal's JWKS: kid %s", jwk["kid"])
        return keys

    # -- The authorization code flow (Authlib) -------------------------------------------------------------------

    def authorization_request(self, redirect_uri: str, **params) -> dict:
        """RFC 6749 §4.1.1 with RFC 7636 S256: Authlib's url, state, nonce and code_verifier. State and nonce are
        256-bit values of ours (Authlib's defaults are 30 and 20 characters)."""
        params |= {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32)}
        with _answers("authorization request"):
            return self.oauth.create_authorization_url(redirect_uri, **params)

    def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> dict:
        """RFC 6749 §4.1.3 with RFC 7636 §4.5, through Authlib (client_secret_basic)."""
        with _answers("token"):
            return dict(self.oauth.fetch_access_token(redirect_uri, code=code, code_verifier=verifier))

    def userinfo(self, token: dict) -> dict:
        with _answers("userinfo"):
            return dict(self.oauth.userinfo(token=token))

    def logout_url(self, id_token_hint: str | None, post_logout_redirect_uri: str) -> str:
        """RP-Initiated Logout 1.0 §2, through Authlib."""
        with _answers("end session"):
            logout = self.oauth.create_logout_url(post_logout_redirect_uri, id_token_hint, client_id=self.client_id)
        return logout["url"]

    # -- DESIGN §6: the portal's own endpoints for client apps ---------------------------------------------------

    def _post_json(self, path: str, body: dict) -> tuple[dict, requests.Response]:
        """A JSON POST with client authentication; 2xx gives its JSON object, 4xx PortalRefused, else unavailable."""
        session = OAuth2Session(self.client_id, self._secret, token_endpoint_auth_method=CLIENT_AUTH_METHOD,
                                default_timeout=self.timeout)  # fmt: skip
        session.register_client_auth_method((CLIENT_AUTH_METHOD, _form_encoded_basic))
        with session, _answers(path):
            auth = session.client_auth(CLIENT_AUTH_METHOD)
            answer = session.post(self.issuer + path, json=body, auth=auth, withhold_token=True, headers=ACCEPT_JSON)
            answer.raise_for_status()
            payload = _json_object(answer)
            if payload is None:
                raise PortalUnavailable(f"{path}: HTTP {answer.status_code}: the answer is not a JSON object")
            return payload, answer

    def verify_grant(self, grant_token: str) -> tuple[dict, int]:
        """DESIGN §6 grant check: the answer and how many seconds it may be reused (its max-age)."""
        body, answer = self._post_json(VERIFY_PATH, {"grant": grant_token})
        return body, max_age(answer.headers)

    def check_device(self, device_id: str) -> bool:
        """DESIGN §6 device check: True when this device should sign in again silently."""
        return self._post_json(DEVICE_CHECK_PATH, {"device_id": device_id})[0].get("reauthorize") is True
