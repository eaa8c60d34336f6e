"""Every route, every method it answers, with hostile values in every place a value can travel: never a 5xx.

A class check over the whole URL map (a new route is covered without a new test): NUL bytes, control characters,
overlong and non-UTF-8 values in path segments, query strings, form fields, Basic credentials and JSON bodies
(malformed, of the wrong type, and nested far deeper than any parser's recursion limit), signed in and signed out, on
SQLite and PostgreSQL (where a NUL byte in a query parameter is a driver error, not a miss).
"""

import base64
import json
import re
from urllib.parse import quote

import pytest

from tests.conftest import Auth, csrf_token_from

HOSTILE_VALUES = {
    "nul": "a\x00b",
    "control": "x\r\nSet-Cookie: injected=1\x1b[31m",
    "overlong": "z" * 5000,
    "non_ascii": "\u00e9\u202e\ufeff\U0001f600",
    "lone_surrogate_bytes": "%ED%A0%80",
}
# Every parameter name the provider and the pages read, so each reaches its parser.
PARAMETER_NAMES = [
    "client_id",
    "client_secret",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "id_token_hint",
    "post_logout_redirect_uri",
    "next",
    "reason",
    "device_id",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "token_type_hint",
    "email",
    "password",
    "current_password",
    "new_password",
    "confirm_password",
    "preset",
    "idle_minutes",
    "absolute_minutes",
    "apply_now",
    "decision",
    "name",
    "role",
]
DEEP_JSON = "[" * 100_000 + "]" * 100_000
JSON_BODIES = {
    "deep": DEEP_JSON,
    "deep_object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "malformed": '{"grant": "ghg_',
    "wrong_type": '[{"scope": ["all"]}]',
    "nul_values": json.dumps({name: "a\x00b" for name in ("grant", "device_id", "scope", "idle_minutes")}),
}


def _routes(app) -> list[tuple[str, list[str]]]:
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        rules.append((rule.rule, sorted(rule.methods)))
    return rules


def _fill(rule: str, value: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", value, rule)


def _requests(rule: str):
    """(description, kwargs for client.open) for one route: hostile path, query, form, Basic and JSON."""
    for label, value in HOSTILE_VALUES.items():
        quoted = value if value.startswith("%") else quote(value, safe="")
        path = _fill(rule, quoted)
        fields = "&".join(f"{name}={quoted}" for name in PARAMETER_NAMES)
        basic = base64.b64encode(f"{value}:{value}".encode()).decode()
        yield f"{label} in path and query", {"path": f"{path}?{fields}"}
        yield (
            f"{label} in the form and Basic",
            {
                "path": path,
                "data": fields,
                "content_type": "application/x-www-form-urlencoded",
                "headers": {"Authorization": f"Basic {basic}"},
            },
        )
    for label, body in JSON_BODIES.items():
        yield f"JSON {label}", {"path": _fill(rule, "x"), "data": body, "content_type": "application/json"}


@pytest.fixture
def fuzz_app(make_app):
    return make_app()


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "signed-out"])
def test_no_route_answers_hostile_input_with_a_server_error(fuzz_app, owner, signed_in):
    client = fuzz_app.test_client()
    token = csrf_token_from(client.get("/login").text)
    failures = []
    for rule, methods in _routes(fuzz_app):
        for method in sorted(set(methods) | {"PUT", "DELETE"}):
            for description, kwargs in _requests(rule):
                if signed_in and client.get_cookie("gh_session") is None:
                    Auth(client).login()
                    token = csrf_token_from(client.get("/").text)
                headers = {**kwargs.pop("headers", {}), "X-CSRFToken": token}
                response = client.open(method=method, headers=headers, **kwargs)
                if response.status_code >= 500:
                    failures.append(f"{method} {rule} ({description}): {response.status_code}")
    assert failures == []


def test_the_fuzz_reaches_every_parser(fuzz_app):
    """The test above must not pass by answering everything from one early gate: each family really parses."""
    client = fuzz_app.test_client()
    assert client.post("/oauth/token", data={"grant_type": "a\x00b"}).status_code in (400, 401)
    assert client.get("/oauth/authorize?client_id=a%00b").status_code == 400
    response = client.post("/internal/grants/verify", data=DEEP_JSON, content_type="application/json")
    assert response.status_code in (400, 401, 413)
    assert response.is_json
