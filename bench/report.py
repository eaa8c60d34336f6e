"""The benchmark's Markdown: issue 13's table (every figure a ratio to the bare Flask route, beside its target, with a
mark), the raw figures of every window, and how and where they were taken."""

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import Result
from bench.suite import (
    APP,
    CHAINS,
    COLUMNS,
    EMBEDDED,
    INTROSPECTION,
    PARTS,
    PATHS,
    POSTGRESQL,
    PRODUCTION,
    REDIS,
    REFRESH,
    SCALE_OUT,
    SHORT_CONNECTIONS,
    STATUS,
    VERIFY,
    Baseline,
    Measured,
    baseline_of,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.md"  # git-ignored
GIT = {"cwd": DEFAULT_OUTPUT.parent.parent, "capture_output": True, "text": True, "timeout": 10}
MET, MISSED = "✓", "✗"
TIMES = "\u00d7"  # the multiplication sign
ROWS = {VERIFY: "grant verify, warm", STATUS: "signed-in status check", INTROSPECTION: "introspection (RFC 7662)",
        REFRESH: "refresh rotation"}  # fmt: skip
HEADINGS = {EMBEDDED: "Gatehouse embedded (SQLite, no Redis)", PRODUCTION: "Gatehouse production (PG + Redis)",
            SCALE_OUT: "production, two instances (A + B)"}  # fmt: skip
PART_NAMES = {APP: "app", POSTGRESQL: "PostgreSQL", REDIS: "Redis"}


@dataclass(frozen=True)
class Goal:
    """Issue 13's target for a path, the same in every configuration."""

    ratio: float  # req/s over the bare route's, at least
    p99_factor: float | None = None  # p99 over the bare route's p99, at most
    p99_ms: float | None = None  # at most
    cpu_ms: float | None = None  # CPU per request, at most

    def text(self) -> str:
        parts = [f"≥ {self.ratio:g}"]
        if self.p99_factor is not None:
            parts.append(f"p99 ≤ {self.p99_factor:g} {TIMES} the bare route's")
        if self.p99_ms is not None:
            parts.append(f"p99 ≤ {self.p99_ms:g} ms")
        if self.cpu_ms is not None:
            parts.append(f"≤ {self.cpu_ms:g} ms CPU each")
        return ", ".join(parts)


GOALS = {VERIFY: Goal(0.8, p99_factor=1.5), STATUS: Goal(0.7), INTROSPECTION: Goal(0.5),
         REFRESH: Goal(0.15, p99_ms=60, cpu_ms=3)}  # fmt: skip


def _mark(met: bool) -> str:
    return MET if met else MISSED


def ratio_text(value: float) -> str:
    """Two significant figures or so: 0.66, 0.075; n/a without a successful response."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


@dataclass(frozen=True)
class Cell:
    """One path in one configuration against its baseline: the figures, each criterion with its mark."""

    result: Result
    baseline: Result
    goal: Goal
    parts: tuple[str, ...]  # the CPU parts this configuration's requests cost

    @property
    def ratio(self) -> float:
        bare = self.baseline.requests_per_second
        return self.result.requests_per_second / bare if bare else math.nan

    @property
    def p99_factor(self) -> float:
        return self.result.percentile_ms(0.99) / self.baseline.percentile_ms(0.99)

    @property
    def cpu_ms(self) -> float:
        return self.result.cpu_ms_per_request(self.parts)

    def checks(self) -> list[tuple[str, bool]]:
        """(figure, met) per criterion; NaN (nothing measured) never meets a target."""
        goal, p99 = self.goal, self.result.percentile_ms(0.99)
        found = [(f"**{ratio_text(self.ratio)}**", self.ratio >= goal.ratio)]
        if goal.p99_factor is not None:
            factor = "n/a" if math.isnan(self.p99_factor) else f"{self.p99_factor:.1f}"
            found.append((f"p99 {factor} {TIMES} the bare route's", self.p99_factor <= goal.p99_factor))
        if goal.p99_ms is not None:
            found.append((f"p99 {_ms(p99)} ms", p99 <= goal.p99_ms))
        if goal.cpu_ms is not None:
            found.append((f"{_ms(self.cpu_ms)} ms CPU", self.cpu_ms <= goal.cpu_ms))
        return found

    @property
    def met(self) -> bool:
        return all(met for _, met in self.checks())

    def text(self) -> str:
        """The ratio and its mark, then req/s, the other criteria with theirs, CPU per request and any errors."""
        ratio, *others = [f"{figure} {_mark(met)}" for figure, met in self.checks()]
        details = [f"{self.result.requests_per_second:,.0f}/s", *others]
        if self.goal.cpu_ms is None:
            details.append(f"{_ms(self.cpu_ms)} ms CPU")
        if self.result.errors:
            details.append(f"{self.result.errors} error{'s' if self.result.errors > 1 else ''}")
        return f"{ratio} ({', '.join(details)})"


def cells(measured: Measured) -> dict[tuple[str, str], Cell]:
    found = {}
    for (column, path), result in measured.results.items():
        baseline = measured.baselines.get(baseline_of(column, path))
        if baseline is not None:
            found[column, path] = Cell(result, baseline, GOALS[path], PARTS[column])
    return found


def summary_table(measured: Measured) -> str:
    """The issue's table: a row per path, a column per configuration, the targets last."""
    found = cells(measured)
    lines = ["| path | " + " | ".join(HEADINGS[c] for c in COLUMNS) + " | target, every configuration |",
             "|---" * (len(COLUMNS) + 2) + "|"]  # fmt: skip
    for path in PATHS:
        row = [found[column, path].text() if (column, path) in found else "not measured" for column in COLUMNS]
        lines.append(f"| {ROWS[path]} | " + " | ".join(row) + f" | {GOALS[path].text()} |")
    met = sum(cell.met for cell in found.values())
    lines += ["", f"{MET} meets its target, {MISSED} misses it. Cells meeting every target: {met} of {len(found)}."]
    return "\n".join(lines)


def raw_table(measured: Measured) -> str:
    """Every window kept (the best round of each), baselines first."""
    lines = ["| configuration | path | connections | req/s | p50 ms | p99 ms | errors | CPU ms/request | "
             "load generator CPU | ratio |", "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]  # fmt: skip
    for key, result in sorted(measured.baselines.items(), key=lambda item: (item[0].instances, -item[0].connections)):
        where = f"bare Flask route, {key.instances} server{'s' if key.instances > 1 else ''}"
        lines.append(_raw_line(where, "GET /hello", key.connections, result, (APP,), "1.00"))
    for (column, path), cell in cells(measured).items():
        lines.append(_raw_line(column, ROWS[path], baseline_of(column, path).connections, cell.result, cell.parts,
                               ratio_text(cell.ratio)))  # fmt: skip
    return "\n".join(lines)


def _raw_line(where: str, path: str, connections: int, result: Result, parts: tuple[str, ...], ratio: str) -> str:
    cells_ = [f"{result.requests_per_second:.0f}", _ms(result.percentile_ms(0.5)), _ms(result.percentile_ms(0.99)),
              error_cell(result), cpu_cell(result, parts), _client_share(result), ratio]  # fmt: skip
    return f"| {where} | {path} | {connections} | " + " | ".join(cells_) + " |"


def cpu_cell(result: Result, parts: Sequence[str]) -> str:
    """app 1.20 + PostgreSQL 0.80 + Redis 0.10 = 2.10 (n/a when a part could not be read), and a warning when a
    metered process ended during the window."""
    each = [f"{PART_NAMES[part]} {_ms(result.cpu_ms_per_request((part,)))}" for part in parts]
    total = _ms(result.cpu_ms_per_request(parts))
    text = total if len(parts) == 1 else f"{' + '.join(each)} = {total}"
    ended = sum(result.cpu[part].ended for part in parts if part in result.cpu)
    return text + (f" ({ended} process(es) ended during the window: what they spent in it is missing)" if ended else "")


def _client_share(result: Result) -> str:
    share = result.client_cpu_seconds / result.seconds
    return "n/a" if math.isnan(share) else f"{share:.0%} of a core"


def error_cell(result: Result) -> str:
    """The count, and by status when there are any (0 = no answer, 1 = a 2xx with an unexpected body)."""
    if not result.errors:
        return "0"
    by_status = ", ".join(f"{status}: {count}" for status, count in sorted(result.error_statuses.items()))
    return f"{result.errors} ({by_status})"


def background(measured: Measured) -> str:
    """What PostgreSQL and Redis spent while only the bare route ran: the shared servers' own and other users' load,
    which the production figures also carry."""
    result = measured.baselines.get(Baseline(1, SHORT_CONNECTIONS))
    if result is None or not {POSTGRESQL, REDIS} <= result.cpu.keys():
        return "- background CPU: not measured"
    per_second = {part: result.cpu[part].seconds / result.seconds * 1000 for part in (POSTGRESQL, REDIS)}
    return (f"- background CPU, while only the bare route ran: PostgreSQL {per_second[POSTGRESQL]:.0f} ms and Redis "
            f"{per_second[REDIS]:.0f} ms a second (other users of a shared server, and their own timers); the "
            "production figures include the same")  # fmt: skip


def method(seconds: float, rounds: int, server: str, settings: dict[str, str]) -> list[str]:
    return [
        f"- server: {server}, for the bare app and every Gatehouse instance; the load generator (bench/loadgen.py, "
        "asyncio, keep-alive) runs on the same machine",
        f"- load: {SHORT_CONNECTIONS} connections for the bare route, grant verify, status and introspection; "
        f"{CHAINS} refresh-token chains rotating back to back (one connection each) and the bare route at {CHAINS}; "
        "with two servers, connection i goes to server i % 2",
        f"- each window: 1 s warm-up, then {seconds:g} s measured; {rounds} round(s), each figure keeps its best round "
        "(highest req/s), the bare route's too; a ratio is req/s over the bare route's at the same connections on "
        "as many servers",
        "- CPU per request: utime + stime from /proc/<pid>/stat when the window opens and closes, summed over the "
        "gunicorn master and workers, the PostgreSQL postmaster, its auxiliary processes and the backends of the "
        "bench's database, and redis-server, divided by the successful responses (embedded: the app's processes "
        "only, SQLite works inside them); the load generator's own CPU is shown apart and counted nowhere",
        "- errors: non-2xx answers by status (0 = no answer, 1 = a 2xx whose body is not the expected answer)",
        "- bench-only settings: " + ", ".join(f"{name}={value}" for name, value in settings.items()),
    ]


def machine() -> list[str]:
    return [
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {_cpu_model()}, {len(os.sched_getaffinity(0))} cores, {_memory_gib():.1f} GiB RAM; "
        f"{platform.platform()}; Python {platform.python_version()}",
        f"- code: {code_version()}",
        f"- load average before the run (1, 5, 15 min): {load_average()}",
    ]


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2  # kB
    return math.nan


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def code_version() -> str:
    """git describe: the commit measured, -dirty when the working tree differs from it."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], **GIT)
    except (OSError, subprocess.SubprocessError):
        return "unknown (git unavailable)"
    return done.stdout.strip() or "unknown"


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def document(context: list[str], measured: Measured) -> str:
    return "\n".join(["# Gatehouse benchmark", "", *context, *measured.notes, background(measured), "",
                      summary_table(measured), "", "## Every window", "", raw_table(measured), ""])  # fmt: skip


def output_path() -> Path:
    """BENCH_OUTPUT, else bench/results/latest.md."""
    raw = os.environ.get("BENCH_OUTPUT")
    return Path(raw) if raw else DEFAULT_OUTPUT


def save(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
