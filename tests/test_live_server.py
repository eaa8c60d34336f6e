"""The browser tests' live server stops only after the requests it is answering are done: a browser's late request
(a favicon, say) cut off by the app's teardown used to leave its file open (a ResourceWarning, so a flaky error)."""

import threading
from urllib.request import urlopen

from tests.helpers import serving


def test_stopping_the_live_server_waits_for_the_requests_in_flight() -> None:
    entered, release = threading.Event(), threading.Event()
    answers: list[bytes] = []
    clients: list[threading.Thread] = []

    def app(environ, start_response):
        entered.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    def serve_one_request_then_stop() -> None:
        with serving(app) as server:
            url = f"http://127.0.0.1:{server.server_port}/"
            clients.append(threading.Thread(target=lambda: answers.append(urlopen(url, timeout=10).read())))
            clients[0].start()
            assert entered.wait(10)

    stopper = threading.Thread(target=serve_one_request_then_stop)
    stopper.start()
    assert entered.wait(10)
    stopper.join(timeout=1)
    assert stopper.is_alive(), "the server stopped while a request was still being answered"
    release.set()
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    clients[0].join(timeout=10)
    assert answers == [b"done"]
