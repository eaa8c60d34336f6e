"""The portal over HTTP (standard library, 3 s timeouts): discovery, JWKS, token, userinfo, grant and device checks."""

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import quote, urlencode

from joserfc.jwk import RSAKey

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
MAX_BODY_BYTES = 1 << 20
JWKS_REFETCH_SECONDS = 10  # an unknown kid refetches the JWKS at most this often (a forged kid cannot flood the portal)
ALGORITHM = "RS256"
VERIFY_PATH = "/internal/grants/verify"
DEVICE_CHECK_PATH = "/internal/devices/check"


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


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    headers: Message


def max_age(headers: Message) -> int:
    """RFC 9111 §5.2.2.1: seconds the answer may be reused; 0 when it may not be stored or says nothing."""
    directives = [d.strip().lower() for d in (headers.get("Cache-Control") or "").split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name == "max-age" and value.strip().isdigit():
            return int(value)
    return 0


def _retry_after(headers: Message) -> int | None:
    value = (headers.get("Retry-After") or "").strip()
    return int(value) if value.isdigit() else None


class Portal:
    """One issuer and one client's credentials; metadata and keys are fetched on first use and kept."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, timeout: float = TIMEOUT_SECONDS):
        self.issuer, self.client_id, self._secret, self.timeout = issuer.rstrip("/"), client_id, client_secret, timeout
        self._metadata: dict | None = None
        self._keys: dict[str, RSAKey] = {}
        self._keys_fetched = float("-inf")
        self.jwks_refetch_seconds = JWKS_REFETCH_SECONDS
        self._lock = threading.Lock()

    # -- HTTP ----------------------------------------------------------------------------------------------------

    def _basic(self) -> str:
        # RFC 6749 §2.3.1: the id and secret are form-encoded before they are joined and base64-encoded.
        pair = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"
        return "Basic " + b64encode(pair.encode()).decode()

    def call(self, url: str, *, form: Mapping | None = None, body: Mapping | None = None,
             client_auth: bool = False, bearer: str | None = None) -> Answer:  # fmt: skip
        """One request; 2xx and 4xx come back as Answer, anything else raises PortalUnavailable."""
        headers, data = {"Accept": "application/json"}, None
        if form is not None:
            data, headers["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if client_auth:
            headers["Authorization"] = self._basic()
        elif bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if not url.startswith(("https://", "http://")):
            raise PortalUnavailable(f"not an HTTP URL: {url}")
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (scheme checked above)
                return self._answer(response.status, response.read(MAX_BODY_BYTES), response.headers)
        except urllib.error.HTTPError as error:
            with error:
                answer = self._answer(error.code, error.read(MAX_BODY_BYTES), error.headers, strict=False)
            if error.code == 429 or error.code >= 500:
                raise PortalUnavailable(f"{url}: HTTP {error.code}", _retry_after(error.headers)) from None
            return answer
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise PortalUnavailable(f"{url}: {error}") from None

    @staticmethod
    def _answer(status: int, raw: bytes, headers: Message, strict: bool = True) -> Answer:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if strict:
                raise PortalUnavailable(f"HTTP {status}: the answer is not a JSON object")
            body = {}
        return Answer(status, body, headers)

    def _ok(self, answer: Answer) -> dict:
        if answer.status >= 400:
            raise PortalRefused(answer.status, answer.body)
        return answer.body

    # -- Discovery and keys --------------------------------------------------------------------------------------

    def metadata(self) -> dict:
        """OpenID Connect Discovery 1.0 §4; the issuer must be exactly ours (§4.3)."""
        if self._metadata is None:
            body = self._ok(self.call(f"{self.issuer}/.well-known/openid-configuration"))
            if body.get("issuer") != self.issuer:
                raise PortalUnavailable(f"discovery names issuer {body.get('issuer')!r}, expected {self.issuer!r}")
            self._metadata = body
        return self._metadata

    def endpoint(self, name: str) -> str:
        url = self.metadata().get(name)
        if not isinstance(url, str):
            raise PortalUnavailable(f"discovery has no {name}")
        return url

    def signing_key(self, kid: str) -> RSAKey | None:
        """The portal's key with this kid; an unknown kid refetches the JWKS once (key rotation)."""
        with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._keys_fetched >= self.jwks_refetch_seconds:
                self._keys_fetched = time.monotonic()
                self._keys = self._fetch_keys()
                key = self._keys.get(kid)
            return key

    def _fetch_keys(self) -> dict[str, RSAKey]:
        keys = {}
        for jwk in self._ok(self.call(self.endpoint("jwks_uri"))).get("keys", []):
            usable = (
                jwk.get("kty") == "RSA" and jwk.get("use", "sig") == "sig" and jwk.get("alg", ALGORITHM) == ALGORITHM
            )
            if usable and isinstance(jwk.get("kid"), str):
                try:
                    keys[jwk["kid"]] = RSAKey.import_key(jwk)
                except (ValueError, TypeError):
                    log.warning("skipping an unreadable key in the portal's JWKS: kid %s", jwk["kid"])
        return keys

    # -- Endpoints -----------------------------------------------------------------------------------------------

    def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> dict:
        """RFC 6749 §4.1.3 with RFC 7636 §4.5 (client_secret_basic)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
        }
        return self._ok(self.call(self.endpoint("token_endpoint"), form=form, client_auth=True))

    def userinfo(self, access_token: str) -> dict:
        return self._ok(self.call(self.endpoint("userinfo_endpoint"), bearer=access_token))

    def verify_grant(self, grant_token: str) -> tuple[dict, int]:
        """DESIGN §6 grant check: the answer and how many seconds it may be reused (its max-age)."""
        answer = self.call(self.issuer + VERIFY_PATH, body={"grant": grant_token}, client_auth=True)
        return self._ok(answer), max_age(answer.headers)

    def check_device(self, device_id: str) -> bool:
        """DESIGN §6 device check: True when this device should sign in again silently."""
        answer = self.call(self.issuer + DEVICE_CHECK_PATH, body={"device_id": device_id}, client_auth=True)
        return self._ok(answer).get("reauthorize") is True
