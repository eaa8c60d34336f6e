"""The request Authlib's endpoints read (Server.create_oauth2_request): the request itself, carrying the URL werkzeug
gives it, which Authlib checks to refuse plain HTTP; a URL remembered for one request is never another's."""

import pytest
from authlib.oauth2.rfc6749 import InsecureTransportError
from werkzeug.wrappers import Request

from app.oauth.server import current_server

URLS = [
    "https://a.test/oauth/introspect",
    "https://b.test/oauth/introspect",
    "https://a.test:8443/oauth/introspect",
    "https://a.test/oauth/token",
    "https://a.test/oauth/caf%C3%A9%20x",
    "https://a.test/oauth/token?scope=caf%C3%A9&x=1",
    "http://localhost/oauth/token",
    "http://127.0.0.1:8000/oauth/revoke",
]


def oauth2_request(app, url: str):
    with app.test_request_context(url, method="POST") as context:
        built = current_server().create_oauth2_request(None)
        assert built.form is context.request.form
        return built, Request(context.request.environ).url  # werkzeug's own, computed afresh


def test_authlib_reads_the_url_werkzeug_computes(app):
    for _ in range(2):  # the second time, where one is remembered, from the memory
        for url in URLS:
            built, expected = oauth2_request(app, url)
            assert built.uri == expected


def test_plain_http_is_still_refused_where_https_was_accepted(app):
    oauth2_request(app, "https://a.test/oauth/token")
    with pytest.raises(InsecureTransportError):
        oauth2_request(app, "http://a.test/oauth/token")
