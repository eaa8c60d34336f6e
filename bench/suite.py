"""What `make bench` serves and measures, in rounds.

Five gunicorn servers run side by side for the whole run, all with the same settings (bench.server): two bare
Flask apps (bench.bare_app), Gatehouse embedded (SQLite, no Redis) and two Gatehouse production instances (A and B
on one PostgreSQL database and one Redis database). Each round measures, one window after another:

- the bare route at 32 and at 16 connections, on one bare server;
- on embedded, then on production A: grant verify (warm), the signed-in status check, introspection of an access
  token (RFC 7662) at 32 connections, and 16 refresh-token chains rotating back to back;
- the bare route at 32 and 16 connections spread over both bare servers;
- the four paths again, spread over A and B (the scale-out case): connection i goes to server i % 2.

Every window is metered (bench.cpu). Each figure keeps its best round (highest req/s), baselines too.
"""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import bare_app, client, cpu, database, instance, loadgen, oauth_load, server
from bench.errors import BenchError

SHORT_CONNECTIONS = 32  # grant verify, status, introspection and their bare route
CHAINS = 16  # refresh rotation and its bare route
WARMUP_SECONDS = 1.0
MINT_SECONDS = 30.0
VERIFY, STATUS, INTROSPECTION, REFRESH = "verify", "status", "introspection", "refresh"
PATHS = (VERIFY, STATUS, INTROSPECTION, REFRESH)
EMBEDDED, PRODUCTION, SCALE_OUT = "embedded", "production", "scale-out"
COLUMNS = (EMBEDDED, PRODUCTION, SCALE_OUT)
APP, POSTGRESQL, REDIS = "app", "postgresql", "redis"
# What CPU per request counts in each configuration (SQLite works inside the app's processes).
PARTS = {EMBEDDED: (APP,), PRODUCTION: (APP, POSTGRESQL, REDIS), SCALE_OUT: (APP, POSTGRESQL, REDIS)}


def connections_of(path: str) -> int:
    return CHAINS if path == REFRESH else SHORT_CONNECTIONS


@dataclass(frozen=True)
class Baseline:
    """The bare route on `instances` bare servers at `connections` connections."""

    instances: int
    connections: int


def baseline_of(column: str, path: str) -> Baseline:
    return Baseline(2 if column == SCALE_OUT else 1, connections_of(path))


@dataclass
class Measured:
    """The best round of every window."""

    results: dict[tuple[str, str], loadgen.Result] = field(default_factory=dict)  # (column, path)
    baselines: dict[Baseline, loadgen.Result] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def keep(self, key, result: loadgen.Result) -> None:
        table = self.baselines if isinstance(key, Baseline) else self.results
        if key not in table or result.requests_per_second > table[key].requests_per_second:
            table[key] = result


@dataclass
class Gatehouse:
    """A configuration's servers and what its load needs, prepared through its first server."""

    servers: list[server.Server]
    rp: instance.OAuthClient
    cookie: str
    verify_answer: bytes
    grant_token: str
    chains: list[str]  # the refresh tokens the rotations post, kept current
    introspection_chain: list[str]  # one refresh token: a fresh access token for each introspection window


@dataclass
class Run:
    seconds: float
    rounds: int
    postgres: database.Postgres
    redis: database.Redis
    measured: Measured = field(default_factory=Measured)

    def meter(self, servers: list[server.Server]) -> cpu.Meter:
        parts = {APP: cpu.process_tree(s.pid for s in servers)}
        if self.postgres.processes:
            parts[POSTGRESQL] = self.postgres.processes
        if self.redis.processes:
            parts[REDIS] = self.redis.processes
        return cpu.Meter(parts)


def measure(directory: Path, seconds: float, rounds: int) -> Measured:
    with database.private_postgres() as postgres, database.private_redis() as redis:
        run = Run(seconds, rounds, postgres, redis)
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:  # the CLI calls of both instances side by side: set-up takes a while
            creating = pool.submit(instance.create, directory / PRODUCTION, postgres.url, redis.url)
            embedded, production = instance.create(directory / EMBEDDED), creating.result()
        print(f"set-up: both instances migrated and filled after {time.monotonic() - started:.0f} s", flush=True)
        with _servers(directory, embedded, production) as (bare, gatehouses):
            print(f"set-up: servers ready, tokens minted after {time.monotonic() - started:.0f} s", flush=True)
            for number in range(1, rounds + 1):
                _round(run, number, bare, gatehouses)
        run.measured.notes += [
            f"- PostgreSQL: {postgres.description}",
            f"- Redis: {redis.description}",
            _invariant(EMBEDDED, embedded.env["DATABASE_URL"]),
            _invariant(f"{PRODUCTION} and {SCALE_OUT}", postgres.url),
        ]
    return run.measured


@contextmanager
def _servers(directory: Path, embedded: instance.Instance, production: instance.Instance
             ) -> Iterator[tuple[list[server.Server], dict[str, Gatehouse]]]:  # fmt: skip
    """Two bare servers, embedded, production A and B; then the configurations, each prepared once."""
    bare = [server.Spec(embedded.env, directory / f"gunicorn-bare-{n}.log", "bench.bare_app:app", bare_app.PATH)
            for n in (1, 2)]  # fmt: skip
    gatehouse = [server.Spec(embedded.env, directory / "gunicorn-embedded.log")]
    gatehouse += [server.Spec(production.env, directory / f"gunicorn-production-{n}.log") for n in "ab"]
    with server.gunicorns(bare + gatehouse) as (bare_1, bare_2, emb, a, b):
        prepared = _prepare(embedded, [emb]), _prepare(production, [a, b])
        yield [bare_1, bare_2], {EMBEDDED: prepared[0], PRODUCTION: _on(prepared[1], [a]), SCALE_OUT: prepared[1]}


def _on(gatehouse: Gatehouse, servers: list[server.Server]) -> Gatehouse:
    """The same data and tokens (the same chains, kept current by whichever runs), served by `servers`."""
    return replace(gatehouse, servers=servers)


def _prepare(bench: instance.Instance, servers: list[server.Server]) -> Gatehouse:
    """Sign in, mint codes (a grant each) and exchange them: one for the grant verify, one for introspection, CHAINS
    for the rotations. The grant verify must give the same answer on every server."""
    first = servers[0]
    cookie = client.signed_in_cookie(first.url, bench.email, bench.password)
    wanted = CHAINS + 2
    codes = oauth_load.mint_codes(first.host, first.port, f"{client.COOKIE_NAME}={cookie}", bench.client, wanted,
                                  MINT_SECONDS, own_grants=True)  # fmt: skip
    if len(codes) < wanted:
        raise BenchError(f"GET {oauth_load.AUTHORIZE_PATH}: {len(codes)} of {wanted} codes minted")
    answers = [client.token_answer(first.url, oauth_load.exchange_form(bench.client, code)) for code in codes]
    grant_token = answers[0].get("grant_token")
    if not isinstance(grant_token, str) or not grant_token:
        raise BenchError(f"POST {oauth_load.TOKEN_PATH}: no grant_token in the code exchange's answer")
    request = client.verify_request(bench.client, grant_token)
    verify_answers = {client.active_answer(s.url, client.VERIFY_PATH, request) for s in servers}
    if len(verify_answers) != 1:
        raise BenchError(f"POST {client.VERIFY_PATH}: the servers answer the same grant differently")
    chains = [answer["refresh_token"] for answer in answers[2:]]
    return Gatehouse(servers, bench.client, cookie, verify_answers.pop(), grant_token, chains,
                     [answers[1]["refresh_token"]])  # fmt: skip


def _round(run: Run, number: int, bare: list[server.Server], gatehouses: dict[str, Gatehouse]) -> None:
    for column in COLUMNS:
        if column != PRODUCTION:  # production shares embedded's single-server baselines
            instances = bare[: baseline_of(column, VERIFY).instances]
            for connections in sorted({connections_of(path) for path in PATHS}, reverse=True):
                key = Baseline(len(instances), connections)
                result = _short_window(run, instances, connections, _bare)
                _progress(number, run.rounds, f"bare route x{key.instances}", connections, result, instances)
                run.measured.keep(key, result)
        gatehouse = gatehouses[column]
        for path in PATHS:
            result = _measure_path(run, gatehouse, path)
            _progress(number, run.rounds, f"{column}, {path}", connections_of(path), result, gatehouse.servers,
                      PARTS[column])  # fmt: skip
            run.measured.keep((column, path), result)


def _measure_path(run: Run, gatehouse: Gatehouse, path: str) -> loadgen.Result:
    servers = gatehouse.servers
    if path == REFRESH:
        where = [(s.host, s.port) for s in servers]
        return oauth_load.rotate(where, gatehouse.rp, gatehouse.chains, run.seconds, WARMUP_SECONDS, run.meter(servers))
    targets = {VERIFY: _verify, STATUS: _status, INTROSPECTION: _introspection}[path](gatehouse)
    return _short_window(run, servers, SHORT_CONNECTIONS, targets)


Targets = Callable[[server.Server], loadgen.Target]  # the request sent again and again to one server


def _short_window(run: Run, servers: list[server.Server], connections: int, target: Targets) -> loadgen.Result:
    return loadgen.run([target(s) for s in servers], connections, run.seconds, WARMUP_SECONDS, run.meter(servers))


def _bare(s: server.Server) -> loadgen.Target:
    return loadgen.Target(s.host, s.port, bare_app.PATH, expected_body=b"hello")


def _verify(gatehouse: Gatehouse) -> Targets:
    headers, body = client.verify_request(gatehouse.rp, gatehouse.grant_token)
    return lambda s: loadgen.Target(s.host, s.port, client.VERIFY_PATH, headers, "POST", body, gatehouse.verify_answer)


def _status(gatehouse: Gatehouse) -> Targets:
    # The answer counts down the idle and absolute times left: its body changes, so only the status is checked.
    headers = {"Cookie": f"{client.COOKIE_NAME}={gatehouse.cookie}"}
    return lambda s: loadgen.Target(s.host, s.port, client.STATUS_PATH, headers)


def _introspection(gatehouse: Gatehouse) -> Targets:
    """A fresh access token (one refresh of the introspection chain), whose answer every server must give."""
    first = gatehouse.servers[0]
    fresh = client.token_answer(first.url, oauth_load.refresh_form(gatehouse.rp, gatehouse.introspection_chain[0]))
    gatehouse.introspection_chain[0] = fresh["refresh_token"]
    headers, body = client.introspection_request(gatehouse.rp, fresh["access_token"])
    answers = {client.active_answer(s.url, client.INTROSPECTION_PATH, (headers, body)) for s in gatehouse.servers}
    if len(answers) != 1:
        raise BenchError(f"POST {client.INTROSPECTION_PATH}: the servers answer the same token differently")
    answer = answers.pop()
    return lambda s: loadgen.Target(s.host, s.port, client.INTROSPECTION_PATH, headers, "POST", body, answer)


def _progress(number: int, rounds: int, what: str, connections: int, result: loadgen.Result,
              servers: list[server.Server], parts: tuple[str, ...] = (APP,)) -> None:  # fmt: skip
    cpu_ms = result.cpu_ms_per_request(parts)
    line = f"round {number}/{rounds} {what}, {connections} connections: {result.requests_per_second:.0f} req/s, "
    print(line + f"p99 {result.percentile_ms(0.99):.1f} ms, {cpu_ms:.2f} ms CPU, {result.errors} errors", flush=True)
    if result.errors:
        for s in servers:
            print(f"gunicorn log tail ({s.log_path.name}):\n{server.log_tail(s.log_path)}", flush=True)


def _invariant(where: str, url: str) -> str:
    doubled = database.doubled_chains(url)
    verdict = "holds" if doubled == 0 else f"VIOLATED in {doubled} chain(s)"
    return f"- after the run ({where}): at most one live refresh token per chain: {verdict}"
