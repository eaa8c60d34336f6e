"""The portal's request class parses a small URL-encoded form exactly as Flask's own does (app/web/requests.py)."""

import pytest
from flask import Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.test import EnvironBuilder

from app.web.requests import FAST_FORM_BYTES, PortalRequest

FORM = "application/x-www-form-urlencoded"
BODIES = [
    b"",
    b"a=1",
    b"a=1&a=2&b=",
    b"a&b=&=c&&",
    b"grant_type=refresh_token&refresh_token=ghr_abc%2Bdef&client_id=gh_x",
    b"name=caf%C3%A9+au+lait&x=%FF%FE",  # percent-encoded bytes that are not UTF-8
    b"na\xffme=1",  # raw bytes that are not UTF-8: an empty form
    b"a=1;b=2",
    b"a=%00&b=\x00",
    b"a=" + b"x" * (FAST_FORM_BYTES - 2),  # the largest body read here
    b"a=" + b"x" * FAST_FORM_BYTES,  # werkzeug's
]


def parsed(app, request_class, body: bytes, content_type: str = FORM, announced: int | None = None):
    environ = EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ()
    if announced is not None:
        environ["CONTENT_LENGTH"] = str(announced)
    with app.app_context():
        request = request_class(environ)
        return list(request.form.lists()), list(request.files.lists()), request.get_data(), type(request.form)


def test_the_app_uses_the_portal_request_class(app):
    assert app.request_class is PortalRequest


@pytest.mark.parametrize("body", BODIES)
def test_a_form_is_parsed_as_flask_parses_it(app, body):
    assert parsed(app, PortalRequest, body) == parsed(app, Request, body)


@pytest.mark.parametrize("content_type", [FORM + "; charset=utf-8", "multipart/form-data; boundary=x", "text/plain"])
def test_other_bodies_are_parsed_as_flask_parses_them(app, content_type):
    body = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n"
    assert parsed(app, PortalRequest, body, content_type) == parsed(app, Request, body, content_type)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_small_body_is_parsed_as_flask_parses_it(app, body):
    assert parsed(app, PortalRequest, body) == parsed(app, Request, body)


def test_a_body_over_a_lower_limit_is_a_413_as_with_flask(app):
    app.config["MAX_CONTENT_LENGTH"] = 8
    for request_class in (PortalRequest, Request):
        with pytest.raises(RequestEntityTooLarge):
            parsed(app, request_class, b"a=123456789")


def test_a_body_shorter_than_announced_is_a_400_as_with_flask(app):
    for request_class in (PortalRequest, Request):
        with pytest.raises(ClientDisconnected):
            parsed(app, request_class, b"a=1", announced=10)
