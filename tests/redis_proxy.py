"""A TCP proxy in front of a real Redis, for one instance's connections only: what a broken network between one app
process and Redis looks like, without touching Redis or the other instances.

- hang(): nothing passes either way, the connections stay open (a silent partition: the client waits for its
  socket timeout); resume() lets the held bytes through again.
- delay(seconds, only=name): what Redis sends reaches the client that much later (a slow link, or a process slow to
  read); with `only`, on the connections that named themselves so (CLIENT SETNAME) alone.
- cut(): every open connection is closed (new ones are accepted and work).
"""

import contextlib
import socket
import threading
import time
from collections import deque

from tests.conftest import free_port

CHUNK_BYTES = 65536
POLL_SECONDS = 0.01


class RedisProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.port = free_port()
        self.url = f"redis://{host}:{self.port}/0"
        self._listener = socket.create_server((host, self.port))
        self._listener.settimeout(POLL_SECONDS)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._held = False
        self._delay = 0.0
        self._only: bytes | None = None
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="redis-proxy").start()

    def hang(self) -> None:
        self._held = True

    def resume(self) -> None:
        self._held, self._delay, self._only = False, 0.0, None

    def delay(self, seconds: float, only: str | None = None) -> None:
        self._delay, self._only = seconds, only.encode() if only else None

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=1)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, server]
            sent = bytearray()  # what the client has sent so far (the start of it: enough to find its name)
            for source, target, towards_client in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(source, target, towards_client, sent), daemon=True).start()

    def _delay_for(self, sent: bytearray) -> float:
        return self._delay if self._only is None or self._only in sent else 0.0

    def _pump(self, source: socket.socket, target: socket.socket, towards_client: bool, sent: bytearray) -> None:
        """Read from source and send to target, holding bytes while hung and, towards the client, while delayed."""
        waiting: deque[tuple[float, bytes]] = deque()
        try:
            source.settimeout(POLL_SECONDS)
            while not self._closed:
                if self._held:
                    time.sleep(POLL_SECONDS)  # neither read nor send: bytes wait in the kernel's buffers
                    continue
                while waiting and waiting[0][0] <= time.monotonic():
                    target.sendall(waiting.popleft()[1])
                try:
                    data = source.recv(CHUNK_BYTES)
                except TimeoutError:
                    continue
                if not data:
                    break
                if not towards_client and len(sent) < CHUNK_BYTES:
                    sent.extend(data)
                waiting.append((time.monotonic() + (self._delay_for(sent) if towards_client else 0.0), data))
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
