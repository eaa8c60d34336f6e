"""The OAuth half of `make bench`: a second instance on PostgreSQL, refresh rotations, code exchanges, grant verify.

Every OAuth row is divided by hello-world measured on this same instance at the same concurrency.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from bench import client, database, instance, loadgen, oauth_load, server, verify_bench
from bench.errors import BenchError
from bench.report import Row

REDIRECT_URI = "https://rp.bench.test/callback"
CHAIN_LEVELS = (1, 4, 16)  # concurrent clients, each rotating a refresh-token chain of its own
WARMUP_SECONDS = 1.0
# Only for the bench instance: the limit (120 a minute per client and address) would answer 429 at once,
# and codes minted before the exchange run must outlive the minting plus the run.
# INTERNAL_RATE_LIMIT (6000 a minute per client and address) likewise for the grant verify rows.
SETTINGS = {"TOKEN_RATE_LIMIT": "1000000 per minute", "AUTH_CODE_TTL_SECONDS": "900",
            "INTERNAL_RATE_LIMIT": "10000000 per minute"}  # fmt: skip
CODE_MARGIN = 1.5  # codes minted per exchange expected (from the measured rotation rate)
MIN_CODES, MAX_CODES = 200, 20_000
MINT_SECONDS = 90.0
GUESSED_EXCHANGES_PER_SECOND = 300  # sizing the batch when no rotation rate was measured
SKIPPED = "skipped: no PostgreSQL"
# A grant is (user, client, portal session, device id): all codes of one signed-in browser share one grant,
# unless each authorize call names a device id of its own. Both layouts are measured.
LAYOUTS = {True: "grant per client", False: "one shared grant"}
# DESIGN §5: never two live (unrotated, unrevoked) refresh tokens in one chain (rotated_at marks a rotation).
INVARIANT = sa.text(
    "SELECT count(*) FROM (SELECT chain_id FROM oauth_refresh_tokens WHERE rotated_at IS NULL "
    "AND revoked_at IS NULL GROUP BY chain_id HAVING count(*) > 1) AS doubled"
)


@dataclass
class Outcome:
    rows: list[Row]
    notes: list[str]
    log_path: Path
    verdicts: list[str] = field(default_factory=list)


def run(directory: Path, seconds: float, connections: int) -> Outcome:
    """Create the instance, serve it with the same gunicorn configuration, measure; always clean up."""
    home = directory / "oauth"
    home.mkdir()
    with database.private_postgres() as postgres_url:
        if postgres_url is None:
            print("PostgreSQL unreachable: refresh rotation skipped, code exchanges on SQLite")
        bench = instance.create(home, postgres_url, **SETTINGS)
        rp = instance.register_client(bench, REDIRECT_URI)
        where = database.describe(postgres_url) if postgres_url else "SQLite"
        outcome = Outcome([], [f"- OAuth instance: {where}, cache: {bench.cache}"], home / "gunicorn.log")
        with server.gunicorn(bench.env, outcome.log_path) as running:
            cookie = client.signed_in_cookie(running.url, bench.email, bench.password)
            _Measure(running, f"{client.COOKIE_NAME}={cookie}", rp, seconds, outcome).all(postgres_url, connections)
        verify = verify_bench.run(bench, rp, home, seconds, "PostgreSQL" if postgres_url else "SQLite")
        outcome.rows += verify.rows
        outcome.notes += verify.notes
        outcome.verdicts += verify.verdicts
        outcome.notes.append(_invariant(bench.env["DATABASE_URL"]))
    return outcome


class _Measure:
    def __init__(self, running: server.Server, cookie: str, rp: instance.OAuthClient, seconds: float, out: Outcome):
        self.running, self.cookie, self.rp, self.seconds, self.out = running, cookie, rp, seconds, out
        self.database = ""
        self.hello: dict[int, loadgen.Result] = {}

    def all(self, postgres_url: str | None, connections: int) -> None:
        """Own grants first; the shared-grant exchange last, as it may leave requests stuck in lock waits."""
        self.database = "PostgreSQL" if postgres_url else "SQLite"
        if postgres_url:
            rate = self.rotations(own_grants=True)
            self.rotations(own_grants=False)
        else:
            rate = GUESSED_EXCHANGES_PER_SECOND
            levels = ", ".join(map(str, CHAIN_LEVELS))
            self.out.rows.append(Row("POST /oauth/token refresh_token", levels, None, note=SKIPPED))
        self.exchanges(connections, rate, own_grants=True)
        self.exchanges(connections, rate, own_grants=False)
        hello_rows = [Row(f"GET /__bench/hello (OAuth instance, {self.database})", level, result, result)
                      for level, result in sorted(self.hello.items())]  # fmt: skip
        self.out.rows[:0] = hello_rows

    def hello_at(self, level: int) -> loadgen.Result:
        if level not in self.hello:
            target = loadgen.Target(self.running.host, self.running.port, "/__bench/hello")
            self.hello[level] = loadgen.run(target, level, self.seconds, WARMUP_SECONDS)
            self._progress(f"hello (OAuth instance, {self.database})", level, self.hello[level])
        return self.hello[level]

    def rotations(self, own_grants: bool) -> float:
        """Rotations/s at each level on fresh chains; returns the rate at the highest level."""
        layout = LAYOUTS[own_grants]
        codes = self.mint(sum(CHAIN_LEVELS), own_grants, needed=sum(CHAIN_LEVELS))
        chains = client.refresh_tokens(self.running.url, lambda code: oauth_load.exchange_form(self.rp, code), codes)
        rate = 0.0
        for level in CHAIN_LEVELS:
            tokens, chains = chains[:level], chains[level:]
            baseline = self.hello_at(level)
            result = oauth_load.rotate(self.running.host, self.running.port, self.rp, tokens, self.seconds,
                                       WARMUP_SECONDS)  # fmt: skip
            self._progress(f"refresh rotation, {layout}", level, result)
            self.out.rows.append(Row(f"POST /oauth/token refresh_token ({self.database}, {layout})", level, result,
                                     baseline))  # fmt: skip
            alive = sum(
                client.refresh_once(self.running.url, oauth_load.refresh_form(self.rp, t)) == 200 for t in tokens
            )
            self.out.notes.append(f"- rotation, {layout}, {level} client(s): {alive}/{level} chains rotate afterwards")
            rate = result.requests_per_second
        return rate

    def exchanges(self, connections: int, expected_rate: float, own_grants: bool) -> None:
        layout = LAYOUTS[own_grants].replace("client", "code")
        wanted = math.ceil(expected_rate * (self.seconds + WARMUP_SECONDS) * CODE_MARGIN)
        codes = self.mint(min(MAX_CODES, max(MIN_CODES, wanted)), own_grants, needed=1)
        baseline = self.hello_at(connections)
        result, ran_out = oauth_load.exchange(self.running.host, self.running.port, self.rp, codes, connections,
                                              self.seconds, WARMUP_SECONDS)  # fmt: skip
        self._progress(f"code exchange, {layout}", connections, result)
        label = f"POST /oauth/token authorization_code ({self.database}, {layout})"
        self.out.rows.append(Row(label, connections, result, baseline))
        short = f"; they ran out after {result.window_end - result.window_start:.2f} s of the window" if ran_out else ""
        self.out.notes.append(f"- code exchange, {layout}: {len(codes)} codes minted beforehand{short}")

    def mint(self, count: int, own_grants: bool, needed: int) -> list[oauth_load.Code]:
        """count codes (at least `needed`); the first alone, so that a shared grant exists before the rest."""
        where = (self.running.host, self.running.port, self.cookie, self.rp)
        codes = oauth_load.mint_codes(*where, 1, MINT_SECONDS, own_grants)
        codes += oauth_load.mint_codes(*where, count - 1, MINT_SECONDS, own_grants)
        if len(codes) < needed:
            raise BenchError(f"GET /oauth/authorize: {len(codes)} of {count} codes minted")
        print(f"minted {len(codes)} of {count} authorization codes ({LAYOUTS[own_grants]})")
        return codes

    @staticmethod
    def _progress(what: str, level: int, result: loadgen.Result) -> None:
        print(f"{what}, concurrency {level}: {result.requests_per_second:.0f} req/s, {result.errors} errors")


def _invariant(url: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            doubled = connection.execute(INVARIANT).scalar_one()
    finally:
        engine.dispose()
    verdict = "holds" if doubled == 0 else f"VIOLATED in {doubled} chain(s)"
    return f"- after the run: at most one live refresh token per chain: {verdict}"
