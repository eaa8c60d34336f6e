"""One-off requests with `requests`: signing in as a browser does, tokens for the load, the answers it expects."""

import base64
import json
import re
from urllib.parse import quote, urlencode

import requests

from bench.errors import BenchError
from bench.instance import OAuthClient
from bench.oauth_load import TOKEN_PATH

COOKIE_NAME = "gh_session"  # the development name: the bench serves plain http
CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
STATUS_PATH = "/session/status"
VERIFY_PATH = "/internal/grants/verify"
INTROSPECTION_PATH = "/oauth/introspect"
WARM_REQUESTS = 8
TIMEOUT_SECONDS = 10


def signed_in_cookie(base_url: str, email: str, password: str) -> str:
    """Sign in, check the session answers /session/status, return the gh_session value."""
    with requests.Session() as http:
        page = http.get(base_url + "/login", timeout=TIMEOUT_SECONDS)
        found = CSRF_PATTERN.search(page.text)
        if page.status_code != 200 or found is None:
            raise BenchError(f"GET /login: status {page.status_code}, CSRF token found: {found is not None}")
        form = {"email": email, "password": password, "csrf_token": found.group(1)}
        answer = http.post(base_url + "/login", data=form, allow_redirects=False, timeout=TIMEOUT_SECONDS)
        cookie = http.cookies.get(COOKIE_NAME)
    if answer.status_code != 303 or not cookie:
        raise BenchError(f"POST /login: status {answer.status_code}, {COOKIE_NAME} set: {bool(cookie)}")
    _warm(base_url, cookie)
    return cookie


def _warm(base_url: str, cookie: str) -> None:
    # A new connection each time, so that both workers are likely to fill their cache.
    for _ in range(WARM_REQUESTS):
        answer = requests.get(base_url + STATUS_PATH, cookies={COOKIE_NAME: cookie}, timeout=TIMEOUT_SECONDS)
        is_json = answer.headers.get("Content-Type", "").startswith("application/json")
        if answer.status_code != 200 or not is_json or "idle_seconds_left" not in answer.json():
            raise BenchError(f"GET {STATUS_PATH}: status {answer.status_code}, JSON: {is_json}")


def token_answer(base_url: str, form: dict) -> dict:
    """POST /oauth/token with form; the JSON answer, which must hold a refresh token."""
    answer = requests.post(base_url + TOKEN_PATH, data=form, timeout=TIMEOUT_SECONDS)
    body = answer.json() if answer.headers.get("Content-Type", "").startswith("application/json") else {}
    if answer.status_code != 200 or not body.get("refresh_token"):
        raise BenchError(f"POST {TOKEN_PATH} ({form.get('grant_type')}): status {answer.status_code}")
    return body


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: both parts form-urlencoded, then Base64."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def verify_request(client: OAuthClient, grant_token: str) -> tuple[dict[str, str], bytes]:
    """The headers and body of a grant verify (the client API's JSON, HTTP Basic)."""
    headers = {"Authorization": basic(client.client_id, client.secret), "Content-Type": "application/json"}
    return headers, json.dumps({"grant": grant_token}).encode()


def introspection_request(client: OAuthClient, access_token: str) -> tuple[dict[str, str], bytes]:
    """The headers and body of an RFC 7662 introspection of an access token (client_secret_basic)."""
    headers = {"Authorization": basic(client.client_id, client.secret),
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    return headers, urlencode({"token": access_token}).encode()


def active_answer(base_url: str, path: str, request: tuple[dict[str, str], bytes]) -> bytes:
    """POST the request (headers, body) once over a fresh connection; the body, checked to read {"active": true}."""
    headers, body = request
    answer = requests.post(base_url + path, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
    is_json = answer.headers.get("Content-Type", "").startswith("application/json")
    if answer.status_code != 200 or not is_json or answer.json().get("active") is not True:
        raise BenchError(f"POST {path}: status {answer.status_code}, JSON: {is_json}, active: "
                         f"{answer.json().get('active') if is_json else None}")  # fmt: skip
    return answer.content
