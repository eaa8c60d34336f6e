"""`python -m bench.profile_introspection`: where the CPU of one warm introspection goes, in-process, under cProfile.

Same setup as the OAuth bench (see bench.profiling), driven through the Flask test client; hello-world is timed
the same way, for the app's per-request floor.
"""

import sys

from bench import client, profiling
from bench.errors import BenchError

PROFILED = 200
# (label, file name ending, function name): the per-request work a warm introspection pays for.
PARTS = (
    ("Flask's request context (request object, URL matching)", "flask/app.py", "request_context"),
    (
        "before-request hooks (cross-site check, CSRF exemption, session, two-step)",
        "flask/app.py",
        "preprocess_request",
    ),
    ("limit on failed client authentication, all of it", "app/security/ratelimit.py", "limited"),
    ("  of which: its charge (a hit kept by the last success: no round trip)", "app/security/token_limit.py", "charge"),
    (
        "  Authlib's endpoint: request, client, token, answer",
        "authlib/oauth2/rfc6749/authorization_server.py",
        "create_endpoint_response",
    ),
    ("    Authlib's request object (form parsed)", "app/oauth/server.py", "create_oauth2_request"),
    (
        "    client authentication (cached identity, secret HMAC)",
        "app/oauth/endpoints.py",
        "authenticate_endpoint_client",
    ),
    (
        "    the token: signature checked once per process, grant from the cache",
        "app/oauth/endpoints.py",
        "query_token",
    ),
    ("    the JSON answer", "app/oauth/server.py", "handle_response"),
    ("after-request hooks (security headers, cookie writer) and the WSGI answer", "flask/app.py", "finalize_request"),
    ("teardown (database session, app context)", "flask/ctx.py", "pop"),
)


def _profile(setup: profiling.Setup) -> None:
    hello = profiling.hello_world(setup)
    token = profiling.token_answer(setup)["access_token"]
    api = setup.app.test_client()
    headers, body = client.introspection_request(setup.rp, token)

    def introspect() -> None:
        answer = api.post(client.INTROSPECTION_PATH, data=body, headers=headers)
        if answer.status_code != 200 or answer.json.get("active") is not True:
            raise BenchError(f"introspection: status {answer.status_code}")

    profiling.time_and_profile(setup, "warm introspection", introspect, hello, PROFILED, PARTS)


if __name__ == "__main__":
    sys.exit(profiling.main(_profile))
