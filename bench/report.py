"""The benchmark's markdown: result table, verdict, machine info; printed and saved to results/."""

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import Result

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.md"
TARGET_RATIO = 0.6
GIT = {"cwd": RESULTS_FILE.parent.parent, "capture_output": True, "text": True, "timeout": 10}
HEADER = "| request | req/s | p50 ms | p99 ms | errors | ratio to hello |\n|---|---:|---:|---:|---:|---:|"


def table(best: dict[str, Result], baseline: str) -> str:
    """One row per request, the baseline's req/s as the denominator of the ratio."""
    reference = best[baseline].requests_per_second
    rows = [_row(label, result, reference) for label, result in best.items()]
    return "\n".join([HEADER, *rows])


def _row(label: str, result: Result, reference: float) -> str:
    ratio = result.requests_per_second / reference if reference else float("nan")
    cells = [
        f"{result.requests_per_second:.0f}",
        f"{result.percentile_ms(0.5):.2f}",
        f"{result.percentile_ms(0.99):.2f}",
    ]
    return f"| {label} | {' | '.join(cells)} | {result.errors} | {ratio:.2f} |"


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
