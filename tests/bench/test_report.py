"""`make bench`'s table is built from the measured windows: ratios to the bare route, marks against issue 13's
targets, CPU per request by part. Results are made up here; no load runs and no timing is asserted."""

from collections import Counter

from bench import cpu, report
from bench.loadgen import Result
from bench.suite import (
    APP,
    EMBEDDED,
    INTROSPECTION,
    POSTGRESQL,
    PRODUCTION,
    REDIS,
    REFRESH,
    SCALE_OUT,
    STATUS,
    VERIFY,
    Baseline,
    Measured,
)

X = report.TIMES  # the multiplication sign


def window(per_second: int, p99_ms: float, cpu_seconds: dict[str, float] | None = None, errors: int = 0) -> Result:
    """A one-second window: per_second responses, 95 % of them at 1 ms and the slowest 5 % at p99_ms."""
    slow = max(1, per_second // 20)
    latencies = [0.001] * (per_second - slow) + [p99_ms / 1000] * slow
    spent = {part: cpu.Spent(seconds, 1) for part, seconds in (cpu_seconds or {}).items()}
    return Result(0.0, 1.0, latencies, Counter({500: errors}) if errors else Counter(), spent)


def measured() -> Measured:
    found = Measured()
    found.baselines[Baseline(1, 32)] = window(1000, 10)
    found.baselines[Baseline(1, 16)] = window(1000, 8)
    found.baselines[Baseline(2, 32)] = window(2000, 10)
    found.results[EMBEDDED, VERIFY] = window(850, 12, {APP: 0.5})
    found.results[PRODUCTION, VERIFY] = window(900, 20, {APP: 0.5, POSTGRESQL: 0.1, REDIS: 0.1})
    found.results[EMBEDDED, STATUS] = window(700, 10, {APP: 0.7})
    found.results[PRODUCTION, INTROSPECTION] = window(75, 50, {APP: 0.3, POSTGRESQL: 0.05, REDIS: 0.01}, errors=3)
    found.results[PRODUCTION, REFRESH] = window(200, 50, {APP: 0.3, POSTGRESQL: 0.2, REDIS: 0.05})
    found.results[EMBEDDED, REFRESH] = window(200, 80, {APP: 0.5})
    found.results[SCALE_OUT, VERIFY] = window(1700, 10, {APP: 1.0, POSTGRESQL: 0.1, REDIS: 0.1})
    return found


def row(table: str, *labels: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {' | '.join(labels)} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_grant_verify_is_judged_on_its_ratio_and_its_p99_against_the_bare_route():
    table = report.summary_table(measured())
    _, embedded, production, scale_out, target = row(table, "grant verify, warm")
    assert embedded == f"**0.85** ✓ (850/s, p99 1.2 {X} the bare route's ✓, 0.59 ms CPU)"
    # 0.9 of the bare route, but a p99 twice the bare route's misses the cell.
    assert production == f"**0.90** ✓ (900/s, p99 2.0 {X} the bare route's ✗, 0.78 ms CPU)"
    # Two instances are divided by two bare servers (2000/s), not by one.
    assert scale_out.startswith(f"**0.85** ✓ (1,700/s, p99 1.0 {X} the bare route's ✓")
    assert target == f"≥ 0.8, p99 ≤ 1.5 {X} the bare route's"


def test_refresh_counts_app_postgresql_and_redis_cpu_and_compares_p99_in_milliseconds():
    table = report.summary_table(measured())
    _, embedded, production, scale_out, target = row(table, "refresh rotation")
    # Divided by the bare route at 16 connections; embedded counts the app's processes only.
    assert embedded == "**0.20** ✓ (200/s, p99 80.0 ms ✗, 2.50 ms CPU ✓)"
    assert production == "**0.20** ✓ (200/s, p99 50.0 ms ✓, 2.75 ms CPU ✓)"
    assert scale_out == "not measured"
    assert target == "≥ 0.15, p99 ≤ 60 ms, ≤ 3 ms CPU each"


def test_small_ratios_keep_two_significant_figures_and_errors_are_shown():
    _, embedded, production, _, target = row(report.summary_table(measured()), "introspection (RFC 7662)")
    assert production == "**0.075** ✗ (75/s, 4.80 ms CPU, 3 errors)"
    assert (embedded, target) == ("not measured", "≥ 0.5")


def test_the_count_of_cells_meeting_every_target():
    # Met: embedded verify, embedded status (0.70 ≥ 0.7), production refresh, scale-out verify.
    assert "Cells meeting every target: 4 of 7." in report.summary_table(measured())


def test_no_successful_response_misses_every_target():
    found = Measured()
    found.baselines[Baseline(1, 32)] = window(1000, 10)
    found.results[EMBEDDED, VERIFY] = Result(0.0, 1.0, [], Counter({0: 5}))
    _, embedded, *_ = row(report.summary_table(found), "grant verify, warm")
    assert embedded == f"**0.000** ✗ (0/s, p99 n/a {X} the bare route's ✗, n/a ms CPU, 5 errors)"


def test_the_raw_table_splits_cpu_per_request_by_part():
    table = report.raw_table(measured())
    assert row(table, "production", "refresh rotation")[7] == "app 1.50 + PostgreSQL 1.00 + Redis 0.25 = 2.75"
    assert row(table, "embedded", "refresh rotation")[7] == "2.50"
    bare = row(table, "bare Flask route, 2 servers")
    assert (bare[2], bare[3], bare[-1]) == ("32", "2000", "1.00")


def test_cpu_spent_counts_new_processes_whole_and_reports_ended_ones():
    before = {"app": {10: 100, 11: 50}, "redis": {20: 7}, "postgresql": {}}
    after = {"app": {10: 130, 12: 5}, "redis": {20: 9}, "postgresql": {}}
    spent = cpu.spent(before, after)
    ticks = cpu.TICKS_PER_SECOND
    assert spent["app"] == cpu.Spent((30 + 5) / ticks, processes=2, ended=1)
    assert spent["redis"] == cpu.Spent(2 / ticks, processes=1, ended=0)
    assert "postgresql" not in spent  # no process could be read: not measured, rather than zero


def test_a_part_not_measured_or_a_process_ended_is_said_in_the_cpu_cell():
    result = window(100, 10, {APP: 0.1, POSTGRESQL: 0.1})
    assert report.cpu_cell(result, (APP, POSTGRESQL, REDIS)) == "app 1.00 + PostgreSQL 1.00 + Redis n/a = n/a"
    result.cpu[APP] = cpu.Spent(0.1, processes=3, ended=1)
    assert report.cpu_cell(result, (APP,)).endswith("(1 process(es) ended during the window: what they spent in it "
                                                    "is missing)")  # fmt: skip
