"""`python -m bench.profile_refresh`: where the time of one refresh rotation goes, in-process, under cProfile.

Same setup as the OAuth bench (see bench.profiling), driven through the Flask test client; hello-world is timed the
same way, for the app's per-request floor. Wall time includes waiting on PostgreSQL and Redis; CPU time is this
process's only (the servers' own CPU is what `make bench` adds).
"""

import sys
import time

from bench import oauth_load, profiling
from bench.errors import BenchError

PROFILED = 50
# (label, file name ending, function name): the per-request work a refresh pays for.
PARTS = (
    ("limit on failed client authentication, all of it", "app/security/ratelimit.py", "limited"),
    ("  of which: its charge (a hit kept by the last success: no round trip)", "app/security/token_limit.py", "charge"),
    ("the token view", "app/oauth/views.py", "token"),
    ("client authentication (lookup, secret HMAC)", "authlib/oauth2/rfc6749/authenticate_client.py", "__call__"),
    ("  of which: client lookup", "app/oauth/server.py", "query_client"),
    ("refresh token read (one joined read, no lock)", "app/oauth/models.py", "live_for_rotation"),
    ("locked path (not taken by a plain rotation)", "app/oauth/token_service.py", "_locked"),
    ("new tokens (successor, access and ID token signed)", "app/oauth/token_service.py", "_token_response"),
    ("rotation written (lock timeout, compare-and-set, successor, link)", "app/oauth/models.py", "rotate"),
    ("commit", "app/oauth/views.py", "_committed"),
    ("session teardown (connection back to the pool)", "flask_sqlalchemy/extension.py", "_teardown_session"),
    ("security headers", "app/security/headers.py", "apply_security_headers"),
)


def _profile(setup: profiling.Setup) -> None:
    hello = profiling.hello_world(setup)
    token = profiling.token_answer(setup)["refresh_token"]
    api = setup.app.test_client()

    def refresh() -> None:
        nonlocal token
        answer = api.post(oauth_load.TOKEN_PATH, data=oauth_load.refresh_form(setup.rp, token))
        if answer.status_code != 200:
            raise BenchError(f"refresh: status {answer.status_code}")
        token = answer.json["refresh_token"]

    cpu_started = time.process_time()
    refresh_ms = profiling.mean_ms(refresh)
    refresh_cpu_ms = (time.process_time() - cpu_started) / (profiling.WARM + profiling.TIMED) * 1000
    hello_ms = profiling.mean_ms(hello)
    print(f"{setup.where}: one refresh takes {refresh_ms:.2f} ms in-process ({refresh_cpu_ms:.2f} ms of this "
          f"process's CPU), hello-world {hello_ms:.2f} ms (means of {profiling.TIMED})")  # fmt: skip
    profiling.profile("refreshes", refresh, PROFILED, PARTS)


if __name__ == "__main__":
    sys.exit(profiling.main(_profile))
