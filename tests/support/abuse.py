"""Abusive and plain clients on raw sockets, shared by tests/load/test_slow_clients.py and
benchmarks/abuse.py: slow-loris tricklers, a closed-loop request generator, and a reader of
HTTP/1.1 responses that keeps its place on a connection (keep-alive, pipelining).
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from tests.support.load import ClientThreads

HOST = "127.0.0.1"


# -- raw HTTP/1.1 ------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def read_response(stream: BinaryIO) -> Response:
    """One response from ``stream`` (a socket's ``makefile("rb")``); 1xx responses are returned too."""
    line = stream.readline(65536)
    if not line:
        raise ConnectionError("connection closed before a response")
    status = int(line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while True:
        raw = stream.readline(65536)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if status >= 200 and "content-length" in headers:
        body = stream.read(int(headers["content-length"]))
    return Response(status, headers, body)


def multipart(data: bytes, name: str = "image", filename: str = "photo.jpg") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def post_bytes(path: str, body: bytes, content_type: str, extra: str = "", close: bool = True) -> bytes:
    """A complete POST request, as bytes."""
    connection = "Connection: close\r\n" if close else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}{connection}\r\n"
    ).encode() + body


# -- slow clients --------------------------------------------------------------------------------

#: A request whose header block never ends: "X-Pad: " then one byte a second.
HEADER_TRICKLE = b"POST /model/predict HTTP/1.1\r\nHost: x\r\nX-Pad: "
#: A request with complete headers announcing a 1 MB body, then one byte a second.
BODY_TRICKLE = (
    b"POST /model/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: 1000000\r\n\r\n"
)


@dataclass
class TrickleResult:
    mode: str
    status: int | None = None  # what the server answered before closing, if anything
    closed_after: float | None = None  # seconds from connecting to the server's close
    error: str | None = None


@dataclass
class Tricklers:
    """``count`` connections per mode sending one byte a second until the server closes them or
    ``max_seconds`` pass; with ``reconnect`` each slot opens a new connection after a close, so the
    server holds ``count`` of them all the time (the measurement), else each slot is one connection
    (the test: every connection's fate is recorded). Runs an asyncio loop in a thread."""

    port: int
    header: int = 0
    body: int = 0
    max_seconds: float = 30.0
    reconnect: bool = False
    results: list[TrickleResult] = field(default_factory=list)
    open_now: int = 0
    max_open: int = 0

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="tricklers", daemon=True)
        self._stop_at = 0.0

    def __enter__(self) -> Tricklers:
        self._stop_at = time.monotonic() + self.max_seconds
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.join()

    def join(self) -> list[TrickleResult]:
        self._thread.join(self.max_seconds + 30)
        return self.results

    def stop(self) -> None:
        self._stop_at = 0.0

    async def _main(self) -> None:
        slots = [HEADER_TRICKLE] * self.header + [BODY_TRICKLE] * self.body
        tasks = []
        for i, opening in enumerate(slots):
            tasks.append(asyncio.create_task(self._slot(opening)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # do not overflow the listen backlog
        await asyncio.gather(*tasks)

    async def _slot(self, opening: bytes) -> None:
        while True:
            await self._one(opening)
            if not self.reconnect or time.monotonic() >= self._stop_at - 0.5:
                return

    async def _one(self, opening: bytes) -> None:
        result = TrickleResult("header" if opening is HEADER_TRICKLE else "body")
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, self.port)
        except OSError as exc:
            result.error = f"connect: {exc!r}"
            self.results.append(result)
            await asyncio.sleep(1)
            return
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        received = b""
        try:
            writer.write(opening)
            await writer.drain()
            while time.monotonic() < self._stop_at:
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout=1.0)
                except TimeoutError:
                    writer.write(b"a")
                    await writer.drain()
                    continue
                if not data:
                    result.closed_after = time.monotonic() - started
                    break
                received += data
        except (ConnectionError, OSError) as exc:
            result.closed_after = time.monotonic() - started
            result.error = repr(exc)
        finally:
            self.open_now -= 1
            writer.close()
        if received.startswith(b"HTTP/1.1 "):
            result.status = int(received[9:12])
        self.results.append(result)


# -- a closed loop of plain clients ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    started: float
    seconds: float
    status: int | None
    retry_after: str | None = None
    body: bytes = b""
    error: str | None = None


class ClosedLoop(ClientThreads):
    """``clients`` threads, each sending ``request`` (bytes, ``Connection: close``) on a new
    connection and reading the answer, again and again until ``stop()`` or ``max_seconds``."""

    def __init__(self, port: int, requests: list[bytes], clients: int, max_seconds: float, timeout: float = 30):
        super().__init__(clients, max_seconds, timeout)
        self.port, self.requests = port, requests

    def _client(self, index: int, deadline: float) -> None:
        request = self.requests[index % len(self.requests)]
        while self.running(deadline):
            self.record(once(self.port, request, self.timeout))


def once(port: int, request: bytes, timeout: float = 30) -> Outcome:
    """Send ``request`` on a new connection and read one response."""
    started = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(request)
            with sock.makefile("rb") as stream:
                response = read_response(stream)
    except (OSError, ValueError) as exc:
        return Outcome(started, time.monotonic() - started, None, error=repr(exc))
    return Outcome(
        started, time.monotonic() - started, response.status, response.headers.get("retry-after"), response.body
    )


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def summary(outcomes: list[Outcome], seconds: float) -> dict:
    """Counts by status, rates, and latency percentiles (ms) of the 200s and of the 503s."""
    ok = [o.seconds * 1000 for o in outcomes if o.status == 200]
    shed = [o.seconds * 1000 for o in outcomes if o.status == 503]
    codes = collections.Counter(str(o.status) if o.status else (o.error or "?").split("(")[0] for o in outcomes)
    return {
        "requests": len(outcomes),
        "codes": dict(codes),
        "ok_per_s": round(len(ok) / seconds, 1),
        "shed_per_s": round(len(shed) / seconds, 1),
        "ok_p50_ms": _round(percentile(ok, 0.5)),
        "ok_p99_ms": _round(percentile(ok, 0.99)),
        "shed_p99_ms": _round(percentile(shed, 0.99)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
