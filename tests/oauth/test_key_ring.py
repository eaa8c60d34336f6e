"""Issue 13: signing keys are read once per process per KEY_RING_SECONDS, not on every signature; a rotation made by
another process is honoured at once for verification (an unknown kid re-reads the keys) and signs everywhere within
the ring's lifetime; a first key made in a transaction that rolls back is never kept."""

import base64
import json
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.extensions import db
from app.oauth import keys
from tests.helpers import count_statements

CLAIMS = {"sub": "7", "exp": 2_000_000_000}


def _warm(app, clock) -> None:
    """The first use makes the first key (kept once committed); the next reads the ring this process keeps."""
    _sign(app, clock)
    _sign(app, clock)


def _sign(app, clock) -> str:
    with app.app_context():
        token = keys.sign(CLAIMS, "JWT", clock.now())
        db.session.commit()
        return token


def _kid(_app, token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def _rotate(app) -> str:
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["kid"]


def test_warm_signatures_and_verifications_read_no_key(app, clock):
    _warm(app, clock)
    with count_statements(app, "SELECT") as selects, app.app_context():
        for _ in range(3):
            keys.verify(keys.sign(CLAIMS, "JWT", clock.now()), "JWT", clock.now())
        keys.jwks(clock.now())
    assert selects["n"] == 0


def test_the_ring_is_read_again_after_its_lifetime(app, clock):
    _warm(app, clock)
    clock.advance(seconds=keys.KEY_RING_SECONDS)
    with count_statements(app, "SELECT") as selects, app.app_context():
        keys.sign(CLAIMS, "JWT", clock.now())
    assert selects["n"] == 1


def test_another_process_rotation_verifies_at_once_and_signs_within_the_ring_lifetime(make_app, clock):
    here, there = make_app(), make_app()  # two processes: two apps, each with its own ring, on one database
    _warm(here, clock)
    old_kid = _kid(here, _sign(here, clock))
    new_kid = _rotate(there)
    from_there = _sign(there, clock)
    assert _kid(there, from_there) == new_kid
    with here.app_context():
        assert keys.verify(from_there, "JWT", clock.now())["sub"] == "7"  # unknown kid: read again, once
    clock.advance(seconds=keys.KEY_RING_SECONDS)
    assert _kid(here, _sign(here, clock)) == new_kid
    assert old_kid != new_kid


def test_a_rotation_here_signs_with_the_new_key_at_once(app, clock):
    _sign(app, clock)
    new_kid = _rotate(app)
    assert _kid(app, _sign(app, clock)) == new_kid


def test_a_first_key_rolled_back_is_never_kept(app, clock):
    with app.app_context():
        keys.jwks(clock.now())  # makes the first key in this transaction...
        db.session.rollback()  # ...which never commits
    token = _sign(app, clock)
    with app.app_context():
        published = [key["kid"] for key in keys.jwks(clock.now())["keys"]]
        assert published == [_kid(app, token)]
        assert keys.verify(token, "JWT", clock.now() + timedelta(seconds=1))["sub"] == "7"


def test_a_token_of_an_unknown_key_is_refused_after_one_read(app, clock):
    _warm(app, clock)
    foreign = RSAKey.generate_key(2048, parameters={"kid": "not-ours"})
    token = jwt.encode({"alg": "RS256", "kid": "not-ours", "typ": "JWT"}, CLAIMS, foreign)
    with count_statements(app, "SELECT") as selects, app.app_context(), pytest.raises(keys.InvalidJWT):
        keys.verify(token, "JWT", clock.now())
    assert selects["n"] == 1
