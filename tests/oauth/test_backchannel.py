"""Back-channel logout: queued with the revocation, delivered and retried by the worker (#39)."""

import time
import urllib.parse
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from app.extensions import db
from app.oauth import backchannel
from app.oauth.models import LogoutDelivery, OAuthGrant
from tests.conftest import Auth
from tests.helpers import LoopbackHTTPServer, QuietHandler
from tests.oauth.conftest import Flow


class Receiver(LoopbackHTTPServer):
    """A client app's back-channel endpoint on loopback that answers as told."""

    def __init__(self):
        self.answers, self.tokens = [], []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "slow":
                    time.sleep(1)  # a receiver that hangs past the portal's delivery timeout
                    answer = 200
                receiver.tokens.append(urllib.parse.parse_qs(body.decode())["logout_token"][0])
                self.send_response(answer)
                self.end_headers()

        super().__init__(Handler, "/backchannel")


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def listening(app, owner, make_client, receiver):
    return Flow(app, make_client(first_party=True, backchannel_logout_uri=receiver.url)).sign_in()


def deliveries(app) -> list[LogoutDelivery]:
    with app.app_context():
        rows = db.session.scalars(select(LogoutDelivery).order_by(LogoutDelivery.id)).all()
        db.session.expunge_all()
        return rows


def deliver(app, clock) -> int:
    with app.app_context():
        return backchannel.deliver_due(clock.now())


def test_revocation_queues_and_the_worker_delivers_a_logout_token(app, listening, receiver, clock):
    tokens = listening.tokens()
    Auth(listening.browser).logout()
    [queued] = deliveries(app)
    assert queued.delivered_at is None and queued.attempts == 0
    assert deliver(app, clock) == 1
    [logout_token] = receiver.tokens
    keyset = KeySet.import_key_set(app.test_client().get("/oauth/jwks").json)
    decoded = jwt.decode(logout_token, keyset, algorithms=["RS256"])
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    assert claims["aud"] == listening.rp.client_id and claims["iss"] == app.config["ISSUER"]
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims and claims["jti"] and claims["exp"] - claims["iat"] <= 120
    with app.app_context():
        [grant] = db.session.scalars(select(OAuthGrant)).all()
        assert claims["sid"] == grant.public_id
    assert listening.introspect(tokens["access_token"]) == {"active": False}
    assert deliveries(app)[0].delivered_at == clock.now()
    assert deliver(app, clock) == 0  # delivered once


def test_a_failing_receiver_is_retried_with_backoff(app, listening, receiver, clock):
    listening.tokens()
    receiver.answers = [500, 500]
    Auth(listening.browser).logout()
    assert deliver(app, clock) == 0
    [row] = deliveries(app)
    assert (row.attempts, row.last_status, row.last_error) == (1, 500, "HTTP 500")
    assert row.next_attempt_at == clock.now() + timedelta(seconds=1)
    assert deliver(app, clock) == 0  # not due yet
    clock.advance(seconds=1)
    assert deliver(app, clock) == 0
    clock.advance(seconds=2)
    assert deliver(app, clock) == 1
    assert deliveries(app)[0].attempts == 3


def test_a_receiver_that_times_out_is_retried(app, listening, receiver, clock):
    app.config["BACKCHANNEL_TIMEOUT_SECONDS"] = 0.2
    listening.tokens()
    receiver.answers = ["slow"]
    Auth(listening.browser).logout()
    assert deliver(app, clock) == 0
    assert deliveries(app)[0].last_error in ("TimeoutError", "URLError")
    clock.advance(seconds=1)
    assert deliver(app, clock) == 1


def test_a_receiver_that_is_down_never_blocks_the_revocation(app, owner, make_client, clock):
    rp = make_client(first_party=True, backchannel_logout_uri="http://127.0.0.1:9/nothing-listens")
    flow = Flow(app, rp).sign_in()
    tokens = flow.tokens()
    assert Auth(flow.browser).logout().status_code == 303
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    for _ in range(backchannel.MAX_ATTEMPTS):
        deliver(app, clock)
        clock.advance(seconds=backchannel.MAX_BACKOFF_SECONDS)
    [row] = deliveries(app)
    assert row.failed_at is not None and row.attempts == backchannel.MAX_ATTEMPTS
    assert row.last_error in ("URLError", "ConnectionRefusedError")


def test_clients_without_a_back_channel_get_nothing_queued(app, flow):
    flow.tokens()
    Auth(flow.browser).logout()
    assert deliveries(app) == []


def test_worker_command_delivers_once(app, listening, receiver):
    listening.tokens()
    Auth(listening.browser).logout()
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert len(receiver.tokens) == 1
