"""The lane (app/web/lane.py) answers the client API's well-formed calls and the status poll of a live cached
session in front of Flask exactly as the Flask views do, leaves every other request to Flask, limits by the address
Flask sees, and hands a request it cannot answer to Flask."""

import base64
import io
import json

import pytest
from flask import request
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app import create_app
from app.web.lane import Lane
from tests.conftest import Auth, base_config
from tests.web.test_headers_and_errors import DATABASE_DOWN_URL

VERIFY, CHECK, STATUS = "/internal/grants/verify", "/internal/devices/check", "/session/status"
DEVICE = "lane-device-0123456789"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def flask_calls(app) -> list[str]:
    """The paths Flask's own request machinery handled (a before-request hook, registered before any request)."""
    calls: list[str] = []
    app.before_request(lambda: calls.append(request.path))
    return calls


def _answer(wsgi_app, path: str, **builder) -> tuple[str, list[tuple[str, str]], bytes]:
    environ = EnvironBuilder(path=path, method=builder.pop("method", "POST"), **builder).get_environ()
    app_iter, status, headers = run_wsgi_app(wsgi_app, environ, buffered=True)
    return status, list(headers.items()), b"".join(app_iter)


def _calls(rp, grant: str) -> dict[str, tuple[str, dict]]:
    """Well-formed calls (the lane takes them), each answered with a different branch of the views."""
    good = {"Authorization": basic(rp.client_id, rp.secret)}
    json_call = {"content_type": "application/json", "headers": good}
    return {
        "active grant": (VERIFY, {**json_call, "data": json.dumps({"grant": grant})}),
        "unknown grant": (VERIFY, {**json_call, "data": json.dumps({"grant": "ghg_" + "x" * 43})}),
        "garbage grant": (VERIFY, {**json_call, "data": json.dumps({"grant": "nope"})}),
        "grant not a string": (VERIFY, {**json_call, "data": json.dumps({"grant": 7})}),
        "malformed JSON": (VERIFY, {**json_call, "data": '{"grant": '}),
        "not an object": (VERIFY, {**json_call, "data": "[1, 2]"}),
        "nested too deep": (VERIFY, {**json_call, "data": "[" * 50 + "]" * 50}),
        "charset parameter": (
            VERIFY,
            {**json_call, "content_type": "application/json; charset=utf-8", "data": json.dumps({"grant": grant})},
        ),
        "wrong secret": (
            VERIFY,
            {
                **json_call,
                "headers": {"Authorization": basic(rp.client_id, "wrong")},
                "data": json.dumps({"grant": grant}),
            },
        ),
        "no credentials": (VERIFY, {"content_type": "application/json", "data": json.dumps({"grant": grant})}),
        "malformed Basic": (VERIFY, {**json_call, "headers": {"Authorization": "Basic %%%"}, "data": "{}"}),
        "device check": (CHECK, {**json_call, "data": json.dumps({"device_id": DEVICE})}),
        "bad device id": (CHECK, {**json_call, "data": json.dumps({"device_id": "a b"})}),
    }


def test_the_lane_answers_well_formed_calls_as_the_flask_views_do(flask_calls, app, flow, rp):
    lane = app.wsgi_app
    assert isinstance(lane, Lane)
    grant = flow.tokens(device_id=DEVICE)["grant_token"]
    flask_calls.clear()  # the sign-in and authorization before
    statuses = {}
    for name, (path, builder) in _calls(rp, grant).items():
        by_flask = _answer(lane.wsgi_app, path, **builder)
        assert flask_calls.pop() == path
        by_lane = _answer(lane, path, **builder)
        assert flask_calls == [], f"{name}: Flask answered it"
        assert by_lane == by_flask, name
        statuses[name] = int(by_lane[0].split()[0])
    assert statuses == {"active grant": 200, "unknown grant": 200, "garbage grant": 200, "grant not a string": 400,
                        "malformed JSON": 400, "not an object": 400, "nested too deep": 400, "charset parameter": 200,
                        "wrong secret": 401, "no credentials": 401, "malformed Basic": 401, "device check": 200,
                        "bad device id": 400}  # fmt: skip


CALLS_FOR_FLASK = {
    "GET": {"method": "GET"},
    "PUT": {"method": "PUT", "content_type": "application/json", "data": "{}"},
    "a form": {"content_type": "application/x-www-form-urlencoded", "data": "grant=x"},
    "no body type": {"data": "{}"},
    "too big": {"content_type": "application/json", "data": "{" + " " * 5000 + "}"},
    "chunked": {
        "content_type": "application/json",
        "input_stream": io.BytesIO(b"{}"),
        "headers": {"Transfer-Encoding": "chunked"},
    },
}


@pytest.mark.parametrize("path", [VERIFY, CHECK, VERIFY + "/"])
@pytest.mark.parametrize("call", CALLS_FOR_FLASK.values(), ids=CALLS_FOR_FLASK.keys())
def test_every_other_call_is_answered_by_flask(app, flask_calls, path, call):
    status, _, body = _answer(app.wsgi_app, path, **dict(call))
    assert flask_calls == [path]
    assert int(status.split()[0]) in {308, 401, 404, 405, 411, 413, 415}, (status, body[:200])


def test_behind_a_proxy_the_lane_limits_by_the_forwarded_address(make_app, rp):
    """ProxyFix is outermost: the lane sees the address Flask would. Each forwarded address has its own window."""
    proxied = make_app(TRUSTED_PROXY_COUNT=1, INTERNAL_RATE_LIMIT="1 per minute")
    api = proxied.test_client()

    def verify(forwarded_for: str) -> int:
        headers = {"Authorization": basic(rp.client_id, rp.secret), "X-Forwarded-For": forwarded_for}
        return api.post(VERIFY, json={"grant": "nope"}, headers=headers).status_code

    assert [verify("203.0.113.1"), verify("203.0.113.2"), verify("203.0.113.1")] == [200, 200, 429]


def test_a_call_the_lane_cannot_answer_goes_to_flask_with_its_body(clock):
    """A database that is down on a cold check: Flask answers the call, as every other error, with a 503."""
    down = create_app(base_config(DATABASE_DOWN_URL, CLOCK=clock, PROPAGATE_EXCEPTIONS=False))
    answer = down.test_client().post(
        VERIFY, json={"grant": "ghg_" + "x" * 43}, headers={"Authorization": basic("demo-app", "s3cret")}
    )
    assert answer.status_code == 503 and answer.json["error"] == "temporarily_unavailable"


@pytest.fixture
def signed_in(flask_calls, app, owner):
    """A browser signed in to the portal, with the cookies a browser holds (the session and the CSRF one), its
    session's state cached by a first poll."""
    browser = app.test_client()
    assert Auth(browser).login().status_code == 303
    assert browser.get("/").status_code == 200  # a page with a form: the CSRF cookie
    assert browser.get(STATUS).status_code == 200
    flask_calls.clear()
    return browser


def _cookie_header(app, browser) -> str:
    names = app.config["PORTAL_COOKIE_NAME"], app.config["SESSION_COOKIE_NAME"]
    return "; ".join(f"{name}={browser.get_cookie(name).value}" for name in names)


def test_the_status_poll_of_a_live_session_is_answered_as_flask_does(flask_calls, app, signed_in, clock):
    lane, headers = app.wsgi_app, {"Cookie": _cookie_header(app, signed_in)}
    for _ in range(2):  # and once the clock has moved: the time left counts down
        by_flask = _answer(lane.wsgi_app, STATUS, method="GET", headers=headers)
        assert flask_calls.pop() == STATUS
        by_lane = _answer(lane, STATUS, method="GET", headers=headers)
        assert flask_calls == [], "Flask answered it"
        assert by_lane == by_flask
        assert by_lane[0].startswith("200") and ("Vary", "Cookie") in by_lane[1]
        clock.advance(minutes=3)


def test_a_poll_the_lane_cannot_answer_goes_to_flask(flask_calls, app, signed_in, clock):
    """No cookie, a tampered one, an ended session, an expired one: Flask answers (and clears, or ends) each."""
    cookie = _cookie_header(app, signed_in)
    tampered = cookie.replace("gh_session=", "gh_session=x", 1)
    assert tampered != cookie
    for headers in ({}, {"Cookie": tampered}):
        status, answer_headers, _ = _answer(app.wsgi_app, STATUS, method="GET", headers=headers)
        assert (status, flask_calls.pop()) == ("401 UNAUTHORIZED", STATUS)
    clock.advance(minutes=app.config["SESSION_IDLE_MINUTES"] + 1)
    status, answer_headers, _ = _answer(app.wsgi_app, STATUS, method="GET", headers={"Cookie": cookie})
    assert (status, flask_calls.pop()) == ("401 UNAUTHORIZED", STATUS)
    cleared = app.config["PORTAL_COOKIE_NAME"] + "=;"
    assert any(name == "Set-Cookie" and value.startswith(cleared) for name, value in answer_headers)


def test_a_signed_out_sessions_poll_goes_to_flask(flask_calls, app, signed_in):
    cookie = _cookie_header(app, signed_in)
    assert Auth(signed_in).logout().status_code in (302, 303)
    flask_calls.clear()
    status, _, body = _answer(app.wsgi_app, STATUS, method="GET", headers={"Cookie": cookie})
    assert (status, flask_calls) == ("401 UNAUTHORIZED", [STATUS])
    assert json.loads(body)["error"] == "login_required"
