"""A small HTTP/1.1 keep-alive load generator on asyncio streams, and the measured window every load runs in.

A window: the clients start one by one during the first half of the warm-up, then `seconds` are measured. Only
responses completed inside the window count; with a meter, the CPU time of the serving processes is read when the
window opens and when it closes (bench.cpu), and so is this process's own (the load generator's).
"""

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bench.cpu import Meter, Spent

REQUEST_TIMEOUT_SECONDS = 10.0
RECONNECT_PAUSE_SECONDS = 0.01
UNEXPECTED_BODY = 1  # the error status recorded for a 2xx whose body is not the target's expected_body


# What a dropped or garbled connection raises; the client counts an error and reconnects.
CONNECTION_ERRORS = (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError)


class ProtocolError(ValueError):
    """The server's answer is not an HTTP/1.x response this generator can frame."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # names in lower case
    body: bytes
    keep_alive: bool


@dataclass(frozen=True)
class Target:
    """One fixed request, sent again and again; with expected_body, a 2xx answering anything else is an error."""

    host: str
    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: bytes = b""
    expected_body: bytes | None = None

    def request_bytes(self) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "User-Agent: gatehouse-bench"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method != "GET":
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def status_of(self, response: Response) -> int:
        unexpected = self.expected_body is not None and response.body != self.expected_body
        return UNEXPECTED_BODY if unexpected and 200 <= response.status < 300 else response.status


@dataclass
class Result:
    """Responses completed inside the measurement window; warm-up and overtime are not counted."""

    window_start: float
    window_end: float
    latencies: list[float] = field(default_factory=list)
    error_statuses: Counter = field(default_factory=Counter)  # status 0: no answer (connection trouble)
    cpu: dict[str, Spent] = field(default_factory=dict)  # by part (bench.cpu), when metered
    client_cpu_seconds: float = math.nan  # the load generator's own, over the window

    def record(self, status: int, started: float, ended: float) -> None:
        if not self.window_start <= ended <= self.window_end:
            return
        if 200 <= status < 300:
            self.latencies.append(ended - started)
        else:
            self.error_statuses[status] += 1

    @property
    def errors(self) -> int:
        return self.error_statuses.total()

    @property
    def seconds(self) -> float:
        return self.window_end - self.window_start

    @property
    def requests_per_second(self) -> float:
        """Successful (2xx) responses per second: errors never inflate the rate."""
        return len(self.latencies) / self.seconds

    def cpu_ms_per_request(self, parts: Sequence[str]) -> float:
        """CPU milliseconds the named parts spent per successful response; NaN when a part was not metered."""
        if not self.latencies or any(part not in self.cpu for part in parts):
            return math.nan
        return sum(self.cpu[part].seconds for part in parts) / len(self.latencies) * 1000

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile of the 2xx latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
        return ordered[rank - 1] * 1000


ClientLoop = Callable[[int, Result], Awaitable[None]]


def window(clients: int, seconds: float, warmup_seconds: float, client_loop: ClientLoop,
           meter: Meter | None = None) -> Result:  # fmt: skip
    """Run client_loop(index, result) for each client until the window closes; measure the last `seconds`."""
    return asyncio.run(_window(clients, seconds, warmup_seconds, client_loop, meter))


async def _window(clients: int, seconds: float, warmup: float, client_loop: ClientLoop, meter: Meter | None) -> Result:
    start = time.perf_counter() + warmup
    result = Result(start, start + seconds)

    async def delayed(index: int) -> None:
        # Opening the connections one by one during warm-up lets the kernel hand them to both gunicorn workers;
        # opened all at once, the first worker to wake up accepts every one.
        await asyncio.sleep(index * warmup / 2 / clients)
        await client_loop(index, result)

    async with asyncio.timeout(warmup + seconds + 2 * REQUEST_TIMEOUT_SECONDS):
        await asyncio.gather(_metered(result, meter), *(delayed(index) for index in range(clients)))
    return result


async def _metered(result: Result, meter: Meter | None) -> None:
    """Read the CPU times as the window opens and as it closes (a few milliseconds of /proc reading each)."""
    if meter is None:
        return
    await asyncio.sleep(result.window_start - time.perf_counter())
    meter.start()
    own = _own_cpu_seconds()
    await asyncio.sleep(result.window_end - time.perf_counter())
    result.client_cpu_seconds = _own_cpu_seconds() - own
    result.cpu = meter.stop()


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def run(targets: Sequence[Target], connections: int, seconds: float, warmup_seconds: float,
        meter: Meter | None = None) -> Result:  # fmt: skip
    """Keep `connections` connections busy, connection i on targets[i % len(targets)] (a load balancer keeping
    each connection on one instance)."""

    async def connection(index: int, result: Result) -> None:
        await _connection(targets[index % len(targets)], result)

    return window(connections, seconds, warmup_seconds, connection, meter)


async def _connection(target: Target, result: Result) -> None:
    """One client connection: reconnect after a failure or a close, until the window ends."""
    payload = target.request_bytes()
    while time.perf_counter() < result.window_end:
        try:
            await _keep_alive(target, payload, result)
        except CONNECTION_ERRORS:
            now = time.perf_counter()
            result.record(0, now, now)
            await asyncio.sleep(RECONNECT_PAUSE_SECONDS)


async def _keep_alive(target: Target, payload: bytes, result: Result) -> None:
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        while (started := time.perf_counter()) < result.window_end:
            writer.write(payload)
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                response = await read_response(reader)
            result.record(target.status_of(response), started, time.perf_counter())
            if not response.keep_alive:
                return
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one response framed by Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    version, status, *_ = status_line.split(b" ", 2)
    if not version.startswith(b"HTTP/1."):
        raise ProtocolError(f"unexpected status line {status_line[:80]!r}")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(b":") for h in header_lines)}
    if b"content-length" not in headers:
        raise ProtocolError("response without Content-Length")
    body = await reader.readexactly(int(headers[b"content-length"]))
    keep_alive = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
    return Response(int(status), headers, body, keep_alive)
