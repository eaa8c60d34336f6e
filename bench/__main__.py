"""`make bench` (python -m bench): Gatehouse embedded, production and two production instances against a bare Flask
route, in one run; the table is printed and written to BENCH_OUTPUT (default bench/results/latest.md).

BENCH_SECONDS (default 5) is each measured window, BENCH_ROUNDS (default 2) how often every window is repeated: a
full run takes about 16 x (1 + BENCH_SECONDS) seconds a round plus a minute of set-up; BENCH_SECONDS=1
BENCH_ROUNDS=1 is a quick smoke run. BENCH_DATABASE_URL (else TEST_DATABASE_URL, else the local server) is the
PostgreSQL server the bench creates its own database on; BENCH_REDIS_URL (default redis://127.0.0.1:6379/13) a Redis
database of its own, which must be empty and is emptied afterwards.
"""

import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import instance, report, server, suite
from bench.errors import BenchError

MAX_SECONDS, MAX_ROUNDS = 120.0, 5


@dataclass(frozen=True)
class Settings:
    seconds: float
    rounds: int

    @classmethod
    def from_env(cls) -> "Settings":
        seconds, rounds = os.environ.get("BENCH_SECONDS", "5"), os.environ.get("BENCH_ROUNDS", "2")
        try:
            settings = cls(float(seconds), int(rounds))
        except ValueError as exc:
            raise BenchError(f"BENCH_SECONDS / BENCH_ROUNDS: {exc}") from exc
        if not (0 < settings.seconds <= MAX_SECONDS and 1 <= settings.rounds <= MAX_ROUNDS):
            raise BenchError(f"BENCH_SECONDS must lie in (0, {MAX_SECONDS:g}] and BENCH_ROUNDS in [1, {MAX_ROUNDS}]")
        return settings


def main() -> int:
    # A plain `kill` must also reach the finally blocks that stop gunicorn and drop the databases.
    signal.signal(signal.SIGTERM, _interrupt)
    directory = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    try:
        settings = Settings.from_env()
        # Taken before anything starts: where, what, and how busy the machine already was.
        context = report.machine() + report.method(settings.seconds, settings.rounds, server.DESCRIPTION,
                                                   instance.SETTINGS)  # fmt: skip
        measured = suite.measure(directory, settings.seconds, settings.rounds)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    text = report.document(context, measured)
    print("\n" + text)
    print(f"written to {report.save(text, report.output_path())}")
    return 0  # a missed target is a result, not a failure


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
