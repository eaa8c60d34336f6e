"""The server's own floor: a bare WSGI callable answering a constant, with no Flask and no Gatehouse.

Served by the same gunicorn configuration and driven by the same load generator as the app, it shows what the
server, the load generator and this machine cost on their own: no route can have a lower p99 than this one.
"""

BODY = b"hello"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
