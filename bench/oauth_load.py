"""OAuth load on asyncio streams (standard library only): codes minted, refresh chains rotated.

Unlike loadgen's fixed requests, every rotation depends on the answer before it: it posts the refresh token the
previous response returned.
"""

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.cpu import Meter
from bench.instance import OAuthClient
from bench.loadgen import CONNECTION_ERRORS, REQUEST_TIMEOUT_SECONDS, Response, Result, read_response, window

TOKEN_PATH = "/oauth/token"
AUTHORIZE_PATH = "/oauth/authorize"
SCOPE = "openid profile email"
RETRY_PAUSE_SECONDS = 0.05
MINT_CONNECTIONS = 8
UNUSABLE = 1  # the error status recorded for a 200 without a usable refresh_token (0 is "no answer")


@dataclass(frozen=True)
class Code:
    value: str
    verifier: str


class Connection:
    """One keep-alive connection, opened on first use and again after the server closed it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, payload: bytes) -> Response:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        try:
            writer.write(payload)
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                response = await read_response(reader)
        except BaseException:
            self.close()
            raise
        if not response.keep_alive:
            self.close()
        return response

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def request_bytes(host: str, port: int, method: str, target: str, form: dict | None = None, cookie: str = "") -> bytes:
    body = urlencode(form).encode() if form is not None else b""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: gatehouse-bench"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if form is not None:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def mint_codes(
    host: str, port: int, cookie: str, client: OAuthClient, count: int, seconds: float, own_grants: bool
) -> list[Code]:
    """Up to `count` codes from /oauth/authorize with the signed-in cookie, within `seconds`.

    A grant is keyed by user, client, portal session and device id: with own_grants every code asks with a
    device id of its own (a grant each), otherwise all codes share the one grant of this portal session.
    """
    return asyncio.run(_mint(host, port, cookie, client, count, seconds, own_grants))


async def _mint(
    host: str, port: int, cookie: str, client: OAuthClient, count: int, seconds: float, own_grants: bool
) -> list[Code]:
    codes: list[Code] = []
    deadline = time.perf_counter() + seconds
    budget = iter(range(count))

    async def one_connection() -> None:
        connection = Connection(host, port)
        try:
            for _ in budget:  # shared: `count` attempts in all, whatever fails
                if time.perf_counter() >= deadline:
                    return
                verifier, challenge = pkce()
                query = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
                         "scope": SCOPE, "state": "bench", "nonce": "bench", "code_challenge": challenge,
                         "code_challenge_method": "S256"}  # fmt: skip
                if own_grants:
                    query["device_id"] = "bench-" + secrets.token_hex(8)
                payload = request_bytes(host, port, "GET", f"{AUTHORIZE_PATH}?{urlencode(query)}", cookie=cookie)
                try:
                    response = await connection.send(payload)
                except CONNECTION_ERRORS:
                    continue
                location = response.headers.get(b"location", b"").decode("latin-1")
                found = parse_qs(urlsplit(location).query).get("code")
                if response.status == 302 and found:
                    codes.append(Code(found[0], verifier))
        finally:
            connection.close()

    async with asyncio.timeout(seconds + 2 * REQUEST_TIMEOUT_SECONDS):
        await asyncio.gather(*(one_connection() for _ in range(min(MINT_CONNECTIONS, count))))
    return codes


def _token_form(client: OAuthClient, **fields: str) -> dict:
    return {"client_id": client.client_id, "client_secret": client.secret, **fields}


def refresh_form(client: OAuthClient, token: str) -> dict:
    return _token_form(client, grant_type="refresh_token", refresh_token=token)


def exchange_form(client: OAuthClient, code: Code) -> dict:
    return _token_form(client, grant_type="authorization_code", code=code.value, code_verifier=code.verifier,
                       redirect_uri=client.redirect_uri)  # fmt: skip


def rotate(servers: Sequence[tuple[str, int]], client: OAuthClient, tokens: list[str], seconds: float,
           warmup: float, meter: Meter | None = None) -> Result:  # fmt: skip
    """One connection per refresh-token chain, each rotating its own chain back to back, chain i on
    servers[i % len(servers)] (host, port); tokens end up current."""

    async def chain(index: int, result: Result) -> None:
        await _chain(*servers[index % len(servers)], client, tokens, index, result)

    return window(len(tokens), seconds, warmup, chain, meter)


async def _chain(host: str, port: int, client: OAuthClient, tokens: list[str], index: int, result: Result) -> None:
    connection = Connection(host, port)
    try:
        while (started := time.perf_counter()) < result.window_end:
            form = refresh_form(client, tokens[index])
            try:
                response = await connection.send(request_bytes(host, port, "POST", TOKEN_PATH, form))
            except CONNECTION_ERRORS:
                # The answer may be lost after the rotation: the same token again is inside the grace window.
                result.record(0, started, time.perf_counter())
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                continue
            successor = _refresh_token_of(response)
            result.record(UNUSABLE if response.status == 200 and not successor else response.status, started,
                          time.perf_counter())  # fmt: skip
            if successor:
                tokens[index] = successor
            elif response.status in (200, 400, 401):
                return  # the chain is revoked, unknown, or its successor unreadable: nothing left to rotate
            else:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)  # 429, 503 (concurrent refresh), 5xx: retry
    finally:
        connection.close()


def _refresh_token_of(response: Response) -> str | None:
    if response.status != 200:
        return None
    try:
        token = json.loads(response.body).get("refresh_token")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None
