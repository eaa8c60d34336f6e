"""Sign in over HTTP the way a browser does, and hand back the portal cookie."""

import re

import requests

from bench.errors import BenchError

COOKIE_NAME = "gh_session"  # the development name: the bench serves plain http
CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
STATUS_PATH = "/session/status"
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


def refresh_tokens(base_url: str, form_for_code, codes: list) -> list[str]:
    """Exchange each code (form_for_code(code) is the POST body): one new refresh-token chain per code."""
    chains = []
    with requests.Session() as http:
        for code in codes:
            answer = http.post(base_url + "/oauth/token", data=form_for_code(code), timeout=TIMEOUT_SECONDS)
            if answer.status_code != 200 or "refresh_token" not in answer.json():
                raise BenchError(f"POST /oauth/token (authorization_code): status {answer.status_code}")
            chains.append(answer.json()["refresh_token"])
    return chains


def refresh_once(base_url: str, form: dict) -> int:
    """One refresh over a fresh connection: the status (a check that a chain is still alive)."""
    return requests.post(base_url + "/oauth/token", data=form, timeout=TIMEOUT_SECONDS).status_code


def grant_token(base_url: str, form: dict) -> str:
    """Exchange one code (form is the POST body) and hand back the grant token of its answer."""
    answer = requests.post(base_url + "/oauth/token", data=form, timeout=TIMEOUT_SECONDS)
    token = answer.json().get("grant_token") if answer.status_code == 200 else None
    if not isinstance(token, str) or not token:
        raise BenchError(f"POST /oauth/token (authorization_code): status {answer.status_code}, no grant_token")
    return token


def verify_grant(base_url: str, path: str, auth: tuple[str, str], token: str) -> bytes:
    """One grant verify over a fresh connection: the body, once checked to read {"active": true, ...}."""
    answer = requests.post(base_url + path, json={"grant": token}, auth=auth, timeout=TIMEOUT_SECONDS)
    is_json = answer.headers.get("Content-Type", "").startswith("application/json")
    if answer.status_code != 200 or not is_json or answer.json().get("active") is not True:
        raise BenchError(f"POST {path}: status {answer.status_code}, JSON: {is_json}, answer: {answer.text[:120]}")
    return answer.content
