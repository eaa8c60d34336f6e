"""Run the benchmark: fresh instance, gunicorn, sign-in, interleaved rounds; then the OAuth instance; report."""

import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import client, instance, loadgen, oauth_bench, report, server
from bench.errors import BenchError

HELLO = "GET /__bench/hello (portal instance, SQLite)"
STATUS = "GET /session/status (signed in)"
ROUNDS = 2
WARMUP_SECONDS = 1.0


@dataclass(frozen=True)
class Settings:
    seconds: float
    connections: int

    @classmethod
    def from_env(cls) -> "Settings":
        seconds, connections = os.environ.get("BENCH_SECONDS", "4"), os.environ.get("BENCH_CONNECTIONS", "16")
        try:
            settings = cls(float(seconds), int(connections))
        except ValueError as exc:
            raise BenchError(f"BENCH_SECONDS / BENCH_CONNECTIONS: {exc}") from exc
        if not (0 < settings.seconds <= 600 and 0 < settings.connections <= 1024):
            raise BenchError("BENCH_SECONDS must lie in (0, 600] and BENCH_CONNECTIONS in [1, 1024]")
        return settings


def main() -> int:
    # A plain `kill` must also reach the finally blocks that stop gunicorn.
    signal.signal(signal.SIGTERM, _interrupt)
    directory = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    try:
        _bench(Settings.from_env(), directory)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0  # a missed target is a result, not a failure


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _bench(settings: Settings, directory: Path) -> None:
    # Taken before the run: what was measured, and how busy the machine already was.
    context = [f"- code: {report.code_version()}", f"- load average before the run: {report.load_average()}"]
    bench = instance.create(directory)
    print(f"cache: {bench.cache}")
    log_path = directory / "gunicorn.log"
    with server.gunicorn(bench.env, log_path) as running:
        cookie = client.signed_in_cookie(running.url, bench.email, bench.password)
        best = _measure(running, cookie, settings)
        if any(result.errors for result in best.values()):
            print(f"errors under load; gunicorn log tail:\n{server.log_tail(log_path)}", file=sys.stderr)
    oauth = oauth_bench.run(directory, settings.seconds, settings.connections)
    if any(row.result and row.result.errors for row in oauth.rows):
        print(f"OAuth errors under load; gunicorn log tail:\n{server.log_tail(oauth.log_path)}", file=sys.stderr)
    _report(best, oauth, settings, [*context, f"- cache: {bench.cache}"])


def _measure(running: server.Server, cookie: str, settings: Settings) -> dict[str, loadgen.Result]:
    """Interleave hello and status rounds against drift; keep each request's best round (highest req/s)."""
    targets = {
        HELLO: loadgen.Target(running.host, running.port, "/__bench/hello"),
        STATUS: loadgen.Target(
            running.host, running.port, client.STATUS_PATH, {"Cookie": f"{client.COOKIE_NAME}={cookie}"}
        ),
    }
    rounds: dict[str, list[loadgen.Result]] = {label: [] for label in targets}
    for number in range(1, ROUNDS + 1):
        for label, target in targets.items():
            result = loadgen.run(target, settings.connections, settings.seconds, WARMUP_SECONDS)
            rounds[label].append(result)
            print(f"round {number}/{ROUNDS} {label}: {result.requests_per_second:.0f} req/s, {result.errors} errors")
    return {label: max(results, key=lambda r: r.requests_per_second) for label, results in rounds.items()}


def _report(best: dict[str, loadgen.Result], oauth: oauth_bench.Outcome, settings: Settings, context: list[str]):
    if not best[HELLO].requests_per_second:
        raise BenchError("no successful hello-world response: nothing to compare against")
    ratio = best[STATUS].requests_per_second / best[HELLO].requests_per_second
    setup = [
        *context,
        f"- server: {server.DESCRIPTION}, for both instances",
        f"- portal instance (SQLite): {settings.connections} keep-alive connections, {WARMUP_SECONDS:.0f} s warm-up + "
        f"{settings.seconds:g} s per round, hello/status interleaved, best of {ROUNDS} rounds (highest req/s)",
        *oauth.notes,
        f"- OAuth rows: one round each, {oauth_bench.WARMUP_SECONDS:.0f} s warm-up + {settings.seconds:g} s; "
        "ratio = req/s over hello-world on the same instance at the same concurrency; "
        "errors = non-200 answers by status (0 = no answer, 1 = 200 without a refresh token); bench-only settings: "
        + ", ".join(f"{name}={value}" for name, value in oauth_bench.SETTINGS.items()),
    ]
    rows = [report.Row(label, settings.connections, result, best[HELLO]) for label, result in best.items()]
    body = report.table(rows + oauth.rows) + "\n\n" + "\n\n".join([report.verdict(ratio), *oauth.verdicts])
    print("\n" + "\n".join(setup) + "\n\n" + body)
    print(f"\nwritten to {report.save(setup, body)}")


if __name__ == "__main__":
    sys.exit(main())
