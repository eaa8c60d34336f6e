"""`python -m bench.profile_verify`: where the time of one warm grant verify goes, in-process, under cProfile.

Same setup as the OAuth bench (see bench.profiling), driven through the Flask test client; hello-world is timed
the same way, for the app's per-request floor.
"""

import sys

from bench import client, profiling
from bench.errors import BenchError

PROFILED = 200
# (label, file name ending, function name): the per-request work a warm verify pays for.
PARTS = (
    ("client lookup in the database (OAuthClient.by_client_id)", "app/oauth/models.py", "by_client_id"),
    ("  of which: pool checkout pre-ping (SELECT 1)", "sqlalchemy/engine/default.py", "_do_ping_w_event"),
    ("session teardown (ROLLBACK, connection back to the pool)", "flask_sqlalchemy/extension.py", "_teardown_session"),
    ("Flask session (not opened on the cookie-free API)", "app/web/auth.py", "open_session"),
    ("rate limit (one hit: this process's windows or Redis)", "app/security/ratelimit.py", "retry_after"),
    ("client secret HMAC (current key and every fallback)", "app/oauth/tokens.py", "client_secret_matches"),
    ("grant verify service (digest, cache lookup, checks)", "app/client_api/services.py", "verify_grant"),
    ("JSON body read and parse", "app/client_api/views.py", "_json_object"),
    ("jsonify of the answer", "flask/json/__init__.py", "jsonify"),
    ("portal session loader (cookie-free API: returns at once)", "app/web/auth.py", "load_current_session"),
    ("portal session cookie writer", "app/web/auth.py", "write_session_cookie"),
    ("cross-site check", "app/security/origin.py", "refuse_cross_site"),
    ("security headers", "app/security/headers.py", "apply_security_headers"),
)


def _profile(setup: profiling.Setup) -> None:
    # Hello-world inside the app, for its own per-request floor: registered before the first request (Flask refuses
    # routes after it).
    setup.app.add_url_rule("/__bench/hello", "bench_hello", lambda: "hello")
    token = profiling.token_answer(setup)["grant_token"]
    api = setup.app.test_client()
    headers = {"Authorization": client.basic(setup.rp.client_id, setup.rp.secret)}

    def verify() -> None:
        answer = api.post(client.VERIFY_PATH, json={"grant": token}, headers=headers)
        if answer.status_code != 200 or answer.json.get("active") is not True:
            raise BenchError(f"verify: status {answer.status_code}")

    def hello() -> None:
        if api.get("/__bench/hello").status_code != 200:
            raise BenchError("hello: not 200")

    verify_ms, hello_ms = profiling.mean_ms(verify), profiling.mean_ms(hello)
    print(f"{setup.where}: one warm verify takes {verify_ms:.2f} ms in-process, "
          f"hello-world {hello_ms:.2f} ms (means of {profiling.TIMED})")  # fmt: skip
    profiling.profile("warm verifies", verify, PROFILED, PARTS)


if __name__ == "__main__":
    sys.exit(profiling.main(_profile))
