"""DESIGN §5, RFC 8252 §7.3, RFC 9700 §4.1.3: redirect URIs match exactly after a strict parse. The one exception:
a native (public) client registered with a loopback IP literal and no port may come back on any valid port.
Everything else (userinfo, backslashes, bad ports, fragments, case, encodings, other loopback spellings) is the
same error page as an address never registered: shown here, never redirected."""

import pytest

from tests.oauth.conftest import Flow, pkce

REGISTERED = "http://127.0.0.1/cb"
REGISTERED_V6 = "http://[::1]/cb"
NOT_REGISTERED = "The application asked to send you to an address it has not registered."

NEAR_MISSES = [
    # userinfo, in every spelling (the host a parser sees depends on who reads "\" and "@")
    "http://evil.test\\@127.0.0.1/cb",
    "http://evil.test@127.0.0.1/cb",
    "http://evil.test@127.0.0.1:5000/cb",
    "http://@127.0.0.1/cb",
    "http://@127.0.0.1:5000/cb",
    "http://user:pass@127.0.0.1:5000/cb",
    "http://127.0.0.1@evil.test/cb",
    "http://127.0.0.1:5000@evil.test/cb",
    "http://127.0.0.1:5000\\@evil.test/cb",
    "http://evil.test%40127.0.0.1:5000/cb",
    "http://127.0.0.1%40evil.test/cb",
    # backslashes
    "http://127.0.0.1:5000\\cb",
    "http://127.0.0.1/cb\\",
    "http:\\\\127.0.0.1:5000/cb",
    # ports: out of range, zero, signed, padded, empty, not ASCII digits, twice
    "http://127.0.0.1:99999/cb",
    "http://127.0.0.1:65536/cb",
    "http://127.0.0.1:0/cb",
    "http://127.0.0.1:+80/cb",
    "http://127.0.0.1:-80/cb",
    "http://127.0.0.1:080/cb",
    "http://127.0.0.1:/cb",
    "http://127.0.0.1: 80/cb",
    "http://127.0.0.1:\u0665\u0660/cb",
    "http://127.0.0.1:80:80/cb",
    "http://127.0.0.1:0x50/cb",
    # fragments
    "http://127.0.0.1/cb#x",
    "http://127.0.0.1/cb#",
    "http://127.0.0.1:5000/cb#x",
    # case and trailing dot
    "HTTP://127.0.0.1/cb",
    "Http://127.0.0.1:5000/cb",
    "http://127.0.0.1/CB",
    "http://127.0.0.1./cb",
    "http://127.0.0.1.:5000/cb",
    # percent-encoding
    "http://127.0.0.1/%63b",
    "http://127.0.0.1:5000/c%62",
    "http://%31%32%37.0.0.1/cb",
    "http://127.0.0.1%3A5000/cb",
    # other hosts that are loopback too, or spell it differently
    "http://[::1]/cb",
    "http://[::1]:5000/cb",
    "http://localhost/cb",
    "http://localhost:5000/cb",
    "http://127.0.0.2:5000/cb",
    "http://127.1/cb",
    "http://2130706433/cb",
    "http://0x7f.0.0.1/cb",
    "https://127.0.0.1/cb",
    "https://127.0.0.1:5000/cb",
    # path and query
    "http://127.0.0.1/cb/",
    "http://127.0.0.1:5000/cb/",
    "http://127.0.0.1/cbx",
    "http://127.0.0.1//cb",
    "http://127.0.0.1/cb/../cb",
    "http://127.0.0.1/cb?x=1",
    "http://127.0.0.1:5000/cb?",
    "http://127.0.0.1:5000",
    "http://127.0.0.1:5000/",
    # whitespace and mangled schemes
    " http://127.0.0.1/cb",
    "http://127.0.0.1/cb ",
    "http://127.0.0.1:5000/cb\n",
    "http://127.0.0.1\t:5000/cb",
    "//127.0.0.1:5000/cb",
    "http:127.0.0.1:5000/cb",
    "http:///127.0.0.1:5000/cb",
]
V6_NEAR_MISSES = [
    "http://[::1]:0/cb",
    "http://[::1]:99999/cb",
    "http://[0:0:0:0:0:0:0:1]:5000/cb",
    "http://[::1]@evil.test/cb",
    "http://evil.test@[::1]:5000/cb",
    "http://[::1]:5000/cb#x",
    "http://127.0.0.1:5000/cb",
]


@pytest.fixture
def native(app, owner, make_client):
    """A native app: public, registered with one loopback IP literal and no port."""
    return lambda registered: Flow(app, make_client([registered], public=True, first_party=True)).sign_in()


@pytest.fixture
def web(app, owner, make_client):
    """A confidential web client that happens to be registered with a loopback address."""
    return lambda registered: Flow(app, make_client([registered], first_party=True)).sign_in()


def assert_refused_as_unregistered(response):
    assert response.status_code == 400, (response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers
    assert NOT_REGISTERED in response.text


@pytest.mark.parametrize("uri", NEAR_MISSES)
def test_native_clients_near_misses_are_not_registered(native, uri):
    assert_refused_as_unregistered(native(REGISTERED).authorize(pkce()[1], redirect_uri=uri))


@pytest.mark.parametrize("uri", V6_NEAR_MISSES)
def test_native_clients_ipv6_near_misses_are_not_registered(native, uri):
    assert_refused_as_unregistered(native(REGISTERED_V6).authorize(pkce()[1], redirect_uri=uri))


@pytest.mark.parametrize("uri", [*NEAR_MISSES, "http://127.0.0.1:5000/cb", "http://127.0.0.1:53111/cb"])
def test_confidential_clients_get_exact_match_only(web, uri):
    assert_refused_as_unregistered(web(REGISTERED).authorize(pkce()[1], redirect_uri=uri))


@pytest.mark.parametrize("uri", [*V6_NEAR_MISSES, "http://[::1]:5000/cb"])
def test_confidential_ipv6_clients_get_exact_match_only(web, uri):
    assert_refused_as_unregistered(web(REGISTERED_V6).authorize(pkce()[1], redirect_uri=uri))


@pytest.mark.parametrize(
    "registered, uri",
    [(REGISTERED, REGISTERED), (REGISTERED, "http://127.0.0.1:1/cb"), (REGISTERED, "http://127.0.0.1:53111/cb"),
     (REGISTERED, "http://127.0.0.1:65535/cb"), (REGISTERED_V6, REGISTERED_V6),
     (REGISTERED_V6, "http://[::1]:53111/cb")],
)  # fmt: skip
def test_native_clients_may_use_any_port_on_their_loopback_address(native, registered, uri):
    response = native(registered).authorize(pkce()[1], redirect_uri=uri)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(uri + "?code=")


@pytest.mark.parametrize("registered", [REGISTERED, REGISTERED_V6])
def test_a_confidential_clients_registered_uri_still_works(web, registered):
    response = web(registered).authorize(pkce()[1], redirect_uri=registered)
    assert response.status_code == 302 and response.headers["Location"].startswith(registered + "?code=")
