"""CPU time spent serving a measured window, read from /proc before and after it (Linux only).

For each process, utime + stime (fields 14 and 15 of /proc/<pid>/stat, in clock ticks, SC_CLK_TCK a second) is
read when the window opens and when it closes; the difference, summed over a part's processes, is what the part
spent. The parts:

- app: a gunicorn master and its workers (the master's children, found again at each reading);
- postgresql: the postmaster, its auxiliary processes (checkpointer, WAL writer, background writer, launchers:
  pg_stat_activity rows without a database) and every backend connected to the bench's own database;
  backends of other databases (other users of a shared server) are left out;
- redis: the redis-server process (its pid from INFO server).

A process that appears during the window counts from its start (it was not there at the first reading); one
that ends during the window loses what it spent since the first reading (the PostgreSQL pool keeps its
connections open, so none should): such processes are counted in `Spent.ended`.
"""

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# After the ")" that closes the command name (which may hold spaces): state is field 3 of proc(5), so field n is
# at index n - 3.
PPID_INDEX, UTIME_INDEX, STIME_INDEX = 4 - 3, 14 - 3, 15 - 3

PidLister = Callable[[], Iterable[int]]
CHILDREN_LISTED = (PROC / "self" / "task" / str(os.getpid()) / "children").exists()  # CONFIG_PROC_CHILDREN


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:  # the process has ended (or was never here)
        return None
    return text.rpartition(")")[2].split()


def cpu_ticks(pid: int) -> int | None:
    """User plus system time of one process so far, in clock ticks; None once it has ended."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[UTIME_INDEX]) + int(fields[STIME_INDEX])


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[PPID_INDEX])


def command_name(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def children_of(parents: set[int]) -> set[int]:
    """The processes whose parent is one of `parents` (forked by its main thread, as gunicorn's workers are).

    /proc/<pid>/task/<pid>/children is one small read; a scan of all of /proc, the fallback where the kernel lacks
    it, takes long enough (~15 ms on a busy machine) to delay the requests in flight when the window opens.
    """
    if not CHILDREN_LISTED:
        return {int(e.name) for e in PROC.iterdir() if e.name.isdigit() and parent_of(int(e.name)) in parents}
    found: set[int] = set()
    for parent in parents:
        with contextlib.suppress(OSError):  # the parent has ended
            found.update(
                int(pid) for pid in (PROC / str(parent) / "task" / str(parent) / "children").read_text().split()
            )
    return found


def process_tree(masters: Iterable[int]) -> PidLister:
    """The masters (gunicorn) and their children (the workers), listed afresh at each reading."""
    roots = set(masters)
    return lambda: roots | children_of(roots)


@dataclass(frozen=True)
class Spent:
    """CPU seconds a part's processes spent in one window."""

    seconds: float
    processes: int
    ended: int = 0  # processes seen at the start but gone at the end: what they spent in the window is missing


@dataclass
class Meter:
    """Named parts, each a function listing its processes now; `reading()` at the start and end of a window."""

    parts: dict[str, PidLister]
    _start: dict[str, dict[int, int]] = field(default_factory=dict)

    def reading(self) -> dict[str, dict[int, int]]:
        out = {}
        for name, lister in self.parts.items():
            ticks = {pid: cpu_ticks(pid) for pid in lister()}
            out[name] = {pid: value for pid, value in ticks.items() if value is not None}
        return out

    def start(self) -> None:
        self._start = self.reading()

    def stop(self) -> dict[str, Spent]:
        return spent(self._start, self.reading())


def spent(before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]) -> dict[str, Spent]:
    """Per part: the sum over its processes of (ticks at the end - ticks at the start, 0 for a new process). A part
    whose processes could not be read at all is left out (not measured), never counted as zero."""
    out = {}
    for name, ending in after.items():
        starting = before.get(name, {})
        if not starting and not ending:
            continue
        ticks = sum(value - starting.get(pid, 0) for pid, value in ending.items())
        ended = len(starting.keys() - ending.keys())
        out[name] = Spent(ticks / TICKS_PER_SECOND, len(ending), ended)
    return out
