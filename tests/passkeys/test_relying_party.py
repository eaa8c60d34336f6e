"""The RP ID and origin come from ISSUER unless configured, and only ones WebAuthn accepts are used."""

import pytest

from app.accounts.models import User
from app.extensions import db
from app.passkeys import relying_party, services
from app.passkeys.errors import PasskeysUnavailable
from tests import factories


@pytest.mark.parametrize(
    ("issuer", "rp_id", "origin"),
    [
        ("https://login.example.com", "login.example.com", "https://login.example.com"),
        ("https://Login.Example.com/gatehouse/", "login.example.com", "https://login.example.com"),
        ("https://login.example.com:443", "login.example.com", "https://login.example.com"),
        ("https://login.example.com:8443", "login.example.com", "https://login.example.com:8443"),
        ("http://localhost:5000", "localhost", "http://localhost:5000"),
        ("http://portal.localhost", "portal.localhost", "http://portal.localhost"),
    ],
)
def test_derived_from_the_issuer(issuer, rp_id, origin):
    assert relying_party.derive(issuer) == relying_party.RelyingParty(rp_id, origin)


def test_configured_values_win_over_the_issuer():
    derived = relying_party.derive("https://login.example.com", "example.com", "https://id.example.com")
    assert derived == relying_party.RelyingParty("example.com", "https://id.example.com")


@pytest.mark.parametrize(
    ("issuer", "rp_id", "origin"),
    [
        ("http://127.0.0.1:5000", None, None),  # the former development default: an IP address, over http
        ("https://192.0.2.10", None, None),
        ("https://[2001:db8::1]:8443", None, None),
        ("https://login.example.com", "192.0.2.10", None),
        ("https://login.example.com", "other.example", None),  # not the origin's host or a suffix of it
        ("https://login.example.com", "ample.com", None),  # a suffix of the text, not of the name
        ("https://login.example.com", "login.example.com.", None),
        ("https://login.example.com", "-bad-.example.com", None),
        ("http://login.example.com", None, None),  # no secure context
        ("ftp://login.example.com", None, None),
        ("https://user:pw@login.example.com", None, None),
        ("https://login.example.com:99999", None, None),
        ("not a url", None, None),
        ("https://login.example.com", None, "http://login.example.com"),
    ],
)
def test_refused_when_webauthn_would_refuse_it(issuer, rp_id, origin):
    with pytest.raises(PasskeysUnavailable):
        relying_party.derive(issuer, rp_id, origin)


def test_the_app_reads_its_settings(make_app):
    app = make_app(ISSUER="https://login.example.com", WEBAUTHN_RP_ID="example.com")
    with app.app_context():
        assert relying_party.current() == relying_party.RelyingParty("example.com", "https://login.example.com")


def test_services_refuse_clearly_on_an_ip_address_issuer(make_app, clock):
    app = make_app(ISSUER="http://127.0.0.1:5000")
    with app.app_context():
        user = db.session.get(User, factories.account_with_users().owner_id)
        with pytest.raises(PasskeysUnavailable, match=r"^Passkeys need https \(or http on localhost\)"):
            services.registration_options(user, clock.now())
        with pytest.raises(PasskeysUnavailable):
            services.authentication_options(clock.now())
