"""ID token validation (OIDC Core §3.1.3.7) with the live portal's keys, fetched from its JWKS by the kit."""

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from app.extensions import db
from app.oauth import keys
from app.relying_party import tokens
from app.relying_party.portal import Portal

CLIENT_ID, NONCE = "gh_demo_client", "nonce-0123456789"


@pytest.fixture
def check(portal, clock):
    """Validate a token as the kit's callback does, at the portal's (real) time."""
    kit_portal = Portal(portal.url, CLIENT_ID, "unused")

    def validate(token: str) -> dict:
        return tokens.id_token(token, keys=kit_portal.signing_key, issuer=portal.url, client_id=CLIENT_ID,
                               nonce=NONCE, now=clock.now())  # fmt: skip

    validate.portal = kit_portal
    return validate


@pytest.fixture
def mint(portal, clock):
    def make(typ="JWT", drop=(), key=None, alg="RS256", **overrides) -> str:
        issued = int(clock.now().timestamp())
        claims = {"iss": portal.url, "sub": "7", "aud": CLIENT_ID, "azp": CLIENT_ID, "auth_time": issued,
                  "sid": "grant-public-id", "nonce": NONCE, "iat": issued, "exp": issued + 600} | overrides  # fmt: skip
        for name in drop:
            claims.pop(name)
        with portal.app.app_context():
            kid = keys.jwks(clock.now())["keys"][0]["kid"]
            db.session.commit()  # the first call creates the portal's first key
            if key is None:
                return keys.sign(claims, typ, clock.now())
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    return make


def test_a_valid_id_token(check, mint):
    claims = check(mint())
    assert claims["sub"] == "7" and claims["sid"] == "grant-public-id"
    assert check(mint(aud=[CLIENT_ID, "other"]))["azp"] == CLIENT_ID  # several audiences: azp names us
    assert check(mint(drop=("azp",)))["sub"] == "7"


@pytest.mark.parametrize(
    ("change", "options"),
    [
        ("another nonce", {"nonce": "replayed"}),
        ("no nonce", {"drop": ("nonce",)}),
        ("another aud", {"aud": "other"}),
        ("several audiences, no azp", {"aud": [CLIENT_ID, "other"], "drop": ("azp",)}),
        ("azp of another client", {"azp": "other"}),
        ("another iss", {"iss": "https://evil.example"}),
        ("no sub", {"drop": ("sub",)}),
        ("no sid", {"drop": ("sid",)}),
        ("no exp", {"drop": ("exp",)}),
        ("a logout token's typ", {"typ": "logout+jwt"}),
        ("an access token's typ", {"typ": "at+jwt"}),
    ],
)
def test_a_bad_id_token_is_refused(check, mint, change, options):
    with pytest.raises(tokens.InvalidToken):
        check(mint(**options))


def test_expiry_and_issue_time_allow_thirty_seconds_of_skew(check, mint, clock):
    now = int(clock.now().timestamp())
    assert check(mint(exp=now - 20))
    assert check(mint(iat=now + 20))
    with pytest.raises(tokens.InvalidToken, match="expired"):
        check(mint(iat=now - 700, exp=now - 31))
    with pytest.raises(tokens.InvalidToken, match="future"):
        check(mint(iat=now + 31))


def test_only_the_portals_keys_and_rs256(check, mint):
    with pytest.raises(tokens.InvalidToken, match="signature"):
        check(mint(key=RSAKey.generate_key(2048)))
    with pytest.raises(tokens.InvalidToken, match="alg"):  # HS256 keyed with something public: never
        check(mint(key=OctKey.import_key("k" * 32), alg="HS256"))


def test_a_rotated_key_is_fetched_when_its_kid_first_appears(check, mint, portal, clock):
    assert check(mint())  # the kit now holds the first key
    with portal.app.app_context():
        keys.rotate(clock.now())
        db.session.commit()
    check.portal.jwks_refetch_seconds = 0  # the last fetch was a moment ago; normally 10 s apart at most
    assert check(mint())["sub"] == "7"
