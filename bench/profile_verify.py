"""`python -m bench.profile_verify`: where the time of one warm grant verify goes, in-process, under cProfile.

Same setup as the OAuth bench (see bench.profiling), driven through the Flask test client; hello-world is timed
the same way, for the app's per-request floor.
"""

import sys

from bench import client, profiling
from bench.errors import BenchError

PROFILED = 200
# (label, file name ending, function name): the per-request work a warm verify pays for, in front of Flask
# (app/web/lane.py).
PARTS = (
    ("the lane, all of it", "app/web/lane.py", "__call__"),
    ("  the call answered (app/client_api/views.answer)", "app/client_api/views.py", "answer"),
    ("    rate limit (a batched hit: this process's windows)", "app/security/ratelimit.py", "retry_after_batched"),
    ("    client identity from the cache and secret HMAC", "app/oauth/clients.py", "authenticate_internal"),
    ("    JSON body parse", "app/security/json_bodies.py", "object_from"),
    ("    grant verify service (digest, cache lookup, checks)", "app/client_api/services.py", "verify_grant"),
    ("    answer bytes and headers", "app/web/json_answers.py", "json_answer"),
    ("  app context pushed and popped (teardown)", "flask/ctx.py", "pop"),
    ("  security headers", "app/security/headers.py", "add_security_headers"),
    ("  WSGI answer (werkzeug Response.__call__)", "werkzeug/wrappers/response.py", "__call__"),
)


def _profile(setup: profiling.Setup) -> None:
    hello = profiling.hello_world(setup)
    token = profiling.token_answer(setup)["grant_token"]
    api = setup.app.test_client()
    headers = {"Authorization": client.basic(setup.rp.client_id, setup.rp.secret)}

    def verify() -> None:
        answer = api.post(client.VERIFY_PATH, json={"grant": token}, headers=headers)
        if answer.status_code != 200 or answer.json.get("active") is not True:
            raise BenchError(f"verify: status {answer.status_code}")

    profiling.time_and_profile(setup, "warm verify", verify, hello, PROFILED, PARTS)


if __name__ == "__main__":
    sys.exit(profiling.main(_profile))
