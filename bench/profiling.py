"""In-process profiling of one call in the production configuration, driven through the Flask test client.

Same setup as `make bench`'s production instance (the bench's own PostgreSQL and Redis databases, its bench-only
settings), so that only the app's own work is measured: no gunicorn, no sockets.
"""

import contextlib
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench import client, database, instance, oauth_load
from bench.errors import BenchError

WARM, TIMED = 5, 20
TOP = 15
APP_FRAMES = r"/app/"


@dataclass(frozen=True)
class Setup:
    app: object  # the Flask app (imported only once the environment is set)
    bench: instance.Instance
    rp: instance.OAuthClient
    where: str


def main(body: Callable[[Setup], None]) -> int:
    """Run body on a fresh instance; always drop the databases and the directory."""
    directory = Path(tempfile.mkdtemp(prefix="gatehouse-profile-"))
    try:
        with (
            database.private_postgres() as postgres,
            database.private_redis() as redis,
            _app(directory, postgres, redis) as setup,
        ):
            body(setup)
    except BenchError as exc:
        print(f"profile failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


@contextlib.contextmanager
def _app(directory: Path, postgres: database.Postgres, redis: database.Redis) -> Iterator[Setup]:
    bench = instance.create(directory, postgres.url, redis.url)
    os.environ.update(bench.env)  # create_app reads its settings from the environment
    from app import create_app
    from app.extensions import db

    app = create_app()
    try:
        yield Setup(app, bench, bench.client, f"{postgres.description}, {redis.description}")
    finally:
        with app.app_context():
            db.engine.dispose()  # before the private database is dropped


def token_answer(setup: Setup) -> dict:
    """Sign in, authorize (a grant of its own) and exchange the code: the token endpoint's JSON answer."""
    browser = setup.app.test_client()
    page = browser.get("/login")
    found = client.CSRF_PATTERN.search(page.text)
    form = {"email": setup.bench.email, "password": setup.bench.password, "csrf_token": found.group(1) if found else ""}
    if browser.post("/login", data=form).status_code != 303:
        raise BenchError("sign-in failed")
    verifier, challenge = oauth_load.pkce()
    query = {"response_type": "code", "client_id": setup.rp.client_id, "redirect_uri": setup.rp.redirect_uri,
             "scope": oauth_load.SCOPE, "code_challenge": challenge, "code_challenge_method": "S256",
             "device_id": "bench-profile"}  # fmt: skip
    location = browser.get(oauth_load.AUTHORIZE_PATH, query_string=query).headers.get("Location", "")
    codes = parse_qs(urlsplit(location).query).get("code")
    if not codes:
        raise BenchError("GET /oauth/authorize gave no code")
    form = oauth_load.exchange_form(setup.rp, oauth_load.Code(codes[0], verifier))
    answer = setup.app.test_client().post(oauth_load.TOKEN_PATH, data=form)
    if answer.status_code != 200:
        raise BenchError(f"code exchange: status {answer.status_code}")
    return answer.json


def hello_world(setup: Setup) -> Callable[[], None]:
    """A hello-world route inside the app, for its own per-request floor, and a call of it through the test client.
    Registered before the first request (Flask refuses routes after it)."""
    setup.app.add_url_rule("/__bench/hello", "bench_hello", lambda: "hello")
    api = setup.app.test_client()

    def hello() -> None:
        if api.get("/__bench/hello").status_code != 200:
            raise BenchError("hello: not 200")

    return hello


def time_and_profile(setup: Setup, what: str, call: Callable[[], None], hello: Callable[[], None], count: int,
                     parts: tuple[tuple[str, str, str], ...]) -> None:  # fmt: skip
    """One call's mean time against hello-world's, then count calls under the profiler."""
    call_ms, hello_ms = mean_ms(call), mean_ms(hello)
    print(f"{setup.where}: one {what} takes {call_ms:.2f} ms in-process, hello-world {hello_ms:.2f} ms "
          f"(means of {TIMED})")  # fmt: skip
    profile(f"{what}s", call, count, parts)


def mean_ms(call: Callable[[], None]) -> float:
    """Milliseconds per call, mean of TIMED calls after WARM unmeasured ones."""
    for _ in range(WARM):
        call()
    started = time.perf_counter()
    for _ in range(TIMED):
        call()
    return (time.perf_counter() - started) / TIMED * 1000


def profile(what: str, call: Callable[[], None], count: int, parts: tuple[tuple[str, str, str], ...] = ()) -> None:
    """Print count calls under cProfile, timed in this process's CPU (what the bench's CPU per request adds up;
    waiting on PostgreSQL or Redis is not counted): the app's own functions by cumulative time, then all by own time.

    parts are (label, file name ending, function name): each one's cumulative CPU per call, profiler included.
    """
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(lambda: [call() for _ in range(count)])
    # Cumulative: the app's own functions only (the framework frames above them add nothing); own time: all.
    for order, only in (("cumulative", APP_FRAMES), ("tottime", ".")):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(only, TOP)
        print(f"\n--- {count} {what}, by {order} ---\n{out.getvalue().strip()}")
    if parts:
        print(f"\n--- {what}: where one call's CPU goes (cumulative, under the profiler) ---")
        print(_breakdown(pstats.Stats(profiler), count, parts))


def _breakdown(stats: pstats.Stats, count: int, parts: tuple[tuple[str, str, str], ...]) -> str:
    total = stats.total_tt / count * 1000
    lines = [f"{total:6.3f} ms  100%  the whole call"]
    for label, file_end, function in parts:
        found = [ct for (file, _, name), (_, _, _, ct, _) in stats.stats.items()
                 if file.endswith(file_end) and name == function]  # fmt: skip
        ms = sum(found) / count * 1000
        lines.append(f"{ms:6.3f} ms  {ms / total:4.0%}  {label}" if found else f"   n/a          {label} (not called)")
    return "\n".join(lines)
