"""Grant verify under load (issue 5): POST /internal/grants/verify with a warm cache, beside hello-world.

Measured on the OAuth instance (its database and settings), served by a gunicorn of its own per cache layout:
in-process always (REDIS_URL removed for that server), Redis as well when REDIS_URL is set. On each server,
hello-world and verify rounds interleave at the same concurrency; each keeps its best round (highest req/s).
"""

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from bench import client, instance, loadgen, oauth_load, server
from bench.errors import BenchError
from bench.report import Row

VERIFY_PATH = "/internal/grants/verify"
FLOOR_APP = "bench.floor_app:app"
CONNECTIONS = 32  # the concurrency, whatever BENCH_CONNECTIONS says
ROUNDS = 2
WARMUP_SECONDS = 1.0
FLOOR_SECONDS = 4.0
WARM_CALLS = 8  # each over a new connection, so that both workers answer some
MINT_SECONDS = 30.0
TARGET_RATIO, TARGET_P99_MS = 0.8, 10.0


@dataclass(frozen=True)
class Layout:
    name: str
    env: dict[str, str]
    slug: str


@dataclass
class Measured:
    rows: list[Row]
    notes: list[str]
    verdicts: list[str]


def layouts(env: dict[str, str]) -> list[Layout]:
    """In-process always; Redis too when the instance's environment names one."""
    found = [Layout("in-process cache", {k: v for k, v in env.items() if k != "REDIS_URL"}, "in-process")]
    if env.get("REDIS_URL"):
        parts = urlsplit(env["REDIS_URL"])  # host and port only: the URL may carry a password
        found.append(Layout(f"Redis cache at {parts.hostname}:{parts.port or 6379}", env, "redis"))
    return found


def run(bench: instance.Instance, rp: instance.OAuthClient, home: Path, seconds: float, database: str) -> Measured:
    measured = Measured([], [], [])
    if not bench.env.get("REDIS_URL"):
        measured.notes.append("- grant verify: in-process cache only (REDIS_URL not set, no Redis row)")
    # app/cache.py IN_PROCESS_MAX_TTL_SECONDS: the one read from the database per worker and period stays in.
    measured.notes.append("- grant verify, in-process cache: an entry lives at most 2 s, so each worker reads the "
                          "grant from the database again every 2 s; every other verify is a cache hit")  # fmt: skip
    floor = _floor(bench.env, home / "gunicorn-floor.log")
    for layout in layouts(bench.env):
        log_path = home / f"gunicorn-verify-{layout.slug}.log"
        with server.gunicorn(layout.env, log_path) as running:
            hello, verify, answer = _measure(running, bench, rp, seconds)
        if hello.errors or verify.errors:
            print(f"grant verify errors ({layout.name}); gunicorn log tail:\n{server.log_tail(log_path)}")
        where = f"{database}, {layout.name}"
        measured.rows += [
            Row(f"GET /__bench/hello (OAuth instance, {where}, verify server)", CONNECTIONS, hello, hello),
            Row(f"POST {VERIFY_PATH} (warm, {where})", CONNECTIONS, verify, hello),
        ]
        measured.notes.append(f"- grant verify, {layout.name}: warmed with {WARM_CALLS} calls, answer {_shape(answer)}")
        measured.verdicts.append(verdict(layout.name, hello, verify, floor))
    baseline = measured.rows[0].result
    measured.rows.append(Row("GET /__bench/hello (bare WSGI app, no Flask: the server's own floor)", CONNECTIONS,
                             floor, baseline))  # fmt: skip
    measured.notes.append(
        f"- grant verify rows: a gunicorn per cache layout on the OAuth instance, {CONNECTIONS} keep-alive "
        f"connections, {WARMUP_SECONDS:.0f} s warm-up + {seconds:g} s per round, hello/verify interleaved, "
        f"best of {ROUNDS} rounds; errors include 1 = 200 with another body than the warm answer; the floor row: "
        f"bench.floor_app under the same gunicorn, best of {ROUNDS} rounds of {FLOOR_SECONDS:g} s"
    )
    return measured


def _floor(env: dict[str, str], log_path: Path) -> loadgen.Result:
    """A constant answer from a bare WSGI callable under the same gunicorn and load generator: best of ROUNDS."""
    with server.gunicorn(env, log_path, FLOOR_APP) as running:
        target = loadgen.Target(running.host, running.port, "/__bench/hello")
        results = [loadgen.run(target, CONNECTIONS, FLOOR_SECONDS, WARMUP_SECONDS) for _ in range(ROUNDS)]
    best = max(results, key=lambda result: result.requests_per_second)
    print(f"server floor (bare WSGI), concurrency {CONNECTIONS}: {best.requests_per_second:.0f} req/s, "
          f"p99 {best.percentile_ms(0.99):.1f} ms")  # fmt: skip
    return best


def _measure(
    running: server.Server, bench: instance.Instance, rp: instance.OAuthClient, seconds: float
) -> tuple[loadgen.Result, loadgen.Result, bytes]:
    cookie = f"{client.COOKIE_NAME}={client.signed_in_cookie(running.url, bench.email, bench.password)}"
    # A grant of its own (own device id): nothing the other rows do can revoke it.
    codes = oauth_load.mint_codes(running.host, running.port, cookie, rp, 1, MINT_SECONDS, own_grants=True)
    if not codes:
        raise BenchError("GET /oauth/authorize gave no code for the grant verify")
    token = client.grant_token(running.url, oauth_load.exchange_form(rp, codes[0]))
    auth = (rp.client_id, rp.secret)
    answers = {client.verify_grant(running.url, VERIFY_PATH, auth, token) for _ in range(WARM_CALLS)}
    if len(answers) != 1:
        raise BenchError(f"POST {VERIFY_PATH}: {len(answers)} different answers to the same grant")
    answer = answers.pop()
    targets = {
        "hello": loadgen.Target(running.host, running.port, "/__bench/hello"),
        "verify": loadgen.Target(
            running.host,
            running.port,
            VERIFY_PATH,
            {"Authorization": basic(*auth), "Content-Type": "application/json"},
            method="POST",
            body=json.dumps({"grant": token}).encode(),
            expected_body=answer,
        ),
    }
    best: dict[str, loadgen.Result] = {}
    for number in range(1, ROUNDS + 1):
        for name, target in targets.items():
            result = loadgen.run(target, CONNECTIONS, seconds, WARMUP_SECONDS)
            print(f"round {number}/{ROUNDS} grant verify server, {name}, concurrency {CONNECTIONS}: "
                  f"{result.requests_per_second:.0f} req/s, {result.errors} errors")  # fmt: skip
            if name not in best or result.requests_per_second > best[name].requests_per_second:
                best[name] = result
    return best["hello"], best["verify"], answer


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: both parts form-urlencoded, then Base64."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _shape(answer: bytes) -> str:
    """The answer's keys and its active flag: enough to show the check passed, no subject or device id."""
    fields = json.loads(answer)
    return f"active={json.dumps(fields.get('active'))}, keys {', '.join(sorted(fields))}"


def verdict(layout: str, hello: loadgen.Result, verify: loadgen.Result, floor: loadgen.Result) -> str:
    ratio = verify.requests_per_second / hello.requests_per_second if hello.requests_per_second else float("nan")
    p99 = verify.percentile_ms(0.99)
    ratio_met = "target met" if ratio >= TARGET_RATIO else "target missed"
    p99_met = "target met" if p99 < TARGET_P99_MS else "target missed"  # NaN (no success) misses
    return (
        f"grant verify ({layout}, {CONNECTIONS} connections): ratio verify/hello = {ratio:.3f} "
        f"(target ≥ {TARGET_RATIO}): {ratio_met}; p99 = {p99:.2f} ms (target < {TARGET_P99_MS:g} ms): {p99_met} "
        f"[hello p99 on the same server: {hello.percentile_ms(0.99):.2f} ms; the server's floor, a bare WSGI "
        f"constant: {floor.percentile_ms(0.99):.2f} ms]"
    )
