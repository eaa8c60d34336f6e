"""`python -m bench.profile_refresh`: where the time of one refresh rotation goes, in-process, under cProfile.

Same setup as the OAuth bench (private PostgreSQL database, or SQLite when none answers), driven through the
Flask test client so that only the app's own work is measured: no gunicorn, no sockets.
"""

import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench import client, database, instance, oauth_bench, oauth_load
from bench.errors import BenchError

WARM, TIMED, PROFILED = 5, 20, 10
TOP = 15
APP_FRAMES = r"/app/"


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="gatehouse-profile-"))
    try:
        with database.private_postgres() as url:
            _profile(directory, url)
    except BenchError as exc:
        print(f"profile failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def _profile(directory: Path, url: str | None) -> None:
    bench = instance.create(directory, url, **oauth_bench.SETTINGS)
    rp = instance.register_client(bench, oauth_bench.REDIRECT_URI)
    os.environ.update(bench.env)  # create_app reads its settings from the environment
    from app import create_app
    from app.extensions import db

    app = create_app()
    try:
        token = _first_refresh_token(app, bench, rp)
        api = app.test_client()

        def refresh() -> None:
            nonlocal token
            answer = api.post(oauth_load.TOKEN_PATH, data=oauth_load.refresh_form(rp, token))
            if answer.status_code != 200:
                raise BenchError(f"refresh: status {answer.status_code}")
            token = answer.json["refresh_token"]

        for _ in range(WARM):
            refresh()
        started = time.perf_counter()
        for _ in range(TIMED):
            refresh()
        print(f"{database.describe(url) if url else 'SQLite'}: one refresh takes "
              f"{(time.perf_counter() - started) / TIMED * 1000:.1f} ms in-process (mean of {TIMED})")  # fmt: skip
        profile = cProfile.Profile()
        profile.runcall(lambda: [refresh() for _ in range(PROFILED)])
        # Cumulative: the app's own functions only (the framework frames above them add nothing); own time: all.
        for order, only in (("cumulative", APP_FRAMES), ("tottime", ".")):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(only, TOP)
            print(f"\n--- {PROFILED} refreshes, by {order} ---\n{out.getvalue().strip()}")
    finally:
        with app.app_context():
            db.engine.dispose()  # before the private database is dropped


def _first_refresh_token(app, bench: instance.Instance, rp: instance.OAuthClient) -> str:
    browser = app.test_client()
    page = browser.get("/login")
    found = client.CSRF_PATTERN.search(page.text)
    form = {"email": bench.email, "password": bench.password, "csrf_token": found.group(1) if found else ""}
    if browser.post("/login", data=form).status_code != 303:
        raise BenchError("sign-in failed")
    verifier, challenge = oauth_load.pkce()
    query = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "scope": oauth_load.SCOPE, "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    location = browser.get(oauth_load.AUTHORIZE_PATH, query_string=query).headers.get("Location", "")
    codes = parse_qs(urlsplit(location).query).get("code")
    if not codes:
        raise BenchError("GET /oauth/authorize gave no code")
    form = oauth_load.exchange_form(rp, oauth_load.Code(codes[0], verifier))
    answer = app.test_client().post(oauth_load.TOKEN_PATH, data=form)
    if answer.status_code != 200:
        raise BenchError(f"code exchange: status {answer.status_code}")
    return answer.json["refresh_token"]


if __name__ == "__main__":
    sys.exit(main())
