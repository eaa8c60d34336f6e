"""Back-channel logout never follows a redirect: a 3xx is a failed delivery, retried (issue 9, item 11)."""

import pytest

from tests.conftest import Auth
from tests.helpers import LoopbackHTTPServer, QuietHandler
from tests.oauth.conftest import Flow
from tests.oauth.test_backchannel import deliver, deliveries


class Server(LoopbackHTTPServer):
    """A loopback server that records every hit, whatever its method, and answers with status (and location)."""

    def __init__(self, status: int, location: str | None = None):
        self.hits: list[str] = []
        server = self

        class Handler(QuietHandler):
            def answer(self):
                server.hits.append(self.command)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = answer

        super().__init__(Handler, "/backchannel")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_delivery_and_its_target_gets_nothing(app, owner, make_client, clock, status):
    target = Server(200)
    redirector = Server(status, target.url)
    try:
        flow = Flow(app, make_client(first_party=True, backchannel_logout_uri=redirector.url)).sign_in()
        flow.tokens()
        Auth(flow.browser).logout()
        assert deliver(app, clock) == 0
        [row] = deliveries(app)
        assert (row.delivered_at, row.last_status, row.last_error) == (None, status, f"HTTP {status}")
        assert row.next_attempt_at > clock.now()  # retried later, with backoff
        assert redirector.hits == ["POST"]
        assert target.hits == []  # nothing went to the address the receiver pointed to
    finally:
        redirector.close()
        target.close()
