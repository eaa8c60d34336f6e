"""The benchmark's markdown: result table, verdict, machine info; printed and saved to results/."""

import math
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import Result

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.md"
TARGET_RATIO = 0.6
GIT = {"cwd": RESULTS_FILE.parent.parent, "capture_output": True, "text": True, "timeout": 10}
HEADER = (
    "| request | concurrency | req/s | p50 ms | p99 ms | errors | ratio to hello |\n|---|---:|---:|---:|---:|---:|---:|"
)


@dataclass(frozen=True)
class Row:
    """One measured (or skipped) request; baseline is the hello-world result it is divided by."""

    label: str
    concurrency: int | str  # a skipped row may stand for several levels
    result: Result | None
    baseline: Result | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.result is None or self.baseline is None or not self.baseline.requests_per_second:
            return float("nan")
        return self.result.requests_per_second / self.baseline.requests_per_second


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, *(_line(row) for row in rows)])


def _line(row: Row) -> str:
    result = row.result
    if result is None:
        return f"| {row.label} | {row.concurrency} | {row.note} | | | | |"
    cells = [
        f"{result.requests_per_second:.0f}",
        _number(result.percentile_ms(0.5)),
        _number(result.percentile_ms(0.99)),
        error_cell(result),
        _number(row.ratio),
    ]
    return f"| {row.label} | {row.concurrency} | {' | '.join(cells)} |"


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"  # no successful response: no latency


def error_cell(result: Result) -> str:
    """The count, and by status when there are any (0 = no answer: connection trouble)."""
    if not result.errors:
        return "0"
    by_status = ", ".join(f"{status}: {count}" for status, count in sorted(result.error_statuses.items()))
    return f"{result.errors} ({by_status})"


def verdict(ratio: float) -> str:
    met = "target met" if ratio >= TARGET_RATIO else "target missed"
    return f"ratio status/hello = {ratio:.3f} (target ≥ {TARGET_RATIO}): {met}"


def machine_info() -> list[str]:
    return [
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- nproc: {len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()})",
        f"- python: {platform.python_version()} ({platform.python_implementation()})",
        f"- platform: {platform.platform()}",
    ]


def code_version() -> str:
    """The commit measured, flagged when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **GIT).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], **GIT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git unavailable)"
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: taken before the run, they show a busy machine."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def save(setup: list[str], body: str) -> Path:
    """Write bench/results/latest.md (git-ignored) and return its path."""
    text = "\n".join(["# Gatehouse benchmark", "", *machine_info(), *setup, "", body, ""])
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(text)
    return RESULTS_FILE
