"""``BufferedThreadWorker``: gunicorn's gthread worker with a buffering front and overload shedding.

gunicorn's gthread worker hands a new connection to a pool thread, which then reads the request
line, headers and body in blocking mode: one client sending a byte a second holds a thread for as
long as it likes, and ``THREADS`` such clients stop the worker (docs/reliability.md, "Slow
clients"). This worker keeps gthread's event loop, pool, keep-alive and graceful shutdown, and
changes what reaches the pool:

* **Buffering.** The loop reads every request whole (headers and body, ``Content-Length`` or
  chunked) without blocking, into memory. Only complete requests go to a thread, which then never
  reads the socket: gunicorn's parser runs over the buffered bytes.
* **Deadlines** (Apache mod_reqtimeout's semantics). The header block must arrive within
  ``HEADER_TIMEOUT_SECONDS`` of the moment the server started waiting for it; the body within
  ``BODY_TIMEOUT_SECONDS`` + received / ``BODY_MIN_RATE_BYTES``. A missed deadline gets 408 and
  the connection closes. A ``Content-Length`` over ``MAX_UPLOAD_BYTES`` gets 413 at the end of the
  headers; ``MAX_BUFFERED_BYTES`` bounds the bodies a worker holds at once (503 beyond).
* **Admission.** At most ``THREADS`` + ``MAX_QUEUE`` requests are queued or running; more get an
  immediate 503 with ``Retry-After`` and the protocol's JSON error body. A request that waited
  longer than ``MAX_QUEUE_WAIT_SECONDS`` for a thread gets the same 503 without running.
* **Probes.** ``GET``/``HEAD`` of the health endpoints skip admission and run on a small pool of
  their own, so Kubernetes' probes never wait behind inference (readiness stays 200 while the
  worker sheds: shedding is not unreadiness).
* ``Expect: 100-continue`` is answered only once the request is admitted: a full queue gets 503,
  and a protected route without a valid API key header gets 401, before the client uploads.

Only plain HTTP/1.x: the worker refuses to start with TLS (the service has none; TLS ends at the
ingress). It relies on gthread internals (``TConn``, ``finish_request``, ``murder_pending``, the
parser's ``unreader``), so ``gunicorn`` is pinned and tests/load/test_slow_clients.py covers it.

This module imports no Flask and no prometheus_client at import time: gunicorn's master imports
the worker class before ``gunicorn.conf.py`` points prometheus at its multiprocess directory. The
HTTP layer's pieces (error bodies, the API key check, metrics) are imported in the worker process.
"""

from __future__ import annotations

import errno
import json
import re
import selectors
import socket
import struct
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from api.server.http1 import Head, Reject, RequestBuffer, reason
from config import Settings

#: Probes, answered on their own pool and never queued or shed.
HEALTH_PATHS = frozenset({"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready"})
#: Threads that answer probes; more probes than HEALTH_BACKLOG at once are shed like any request.
HEALTH_THREADS = 2
HEALTH_BACKLOG = 16
#: Largest header block (request line and fields) the front buffers; larger gets 431.
MAX_HEAD_BYTES = 64 * 1024
#: After an error answer, how long the front keeps reading (and discarding) what the client still
#: sends, so that closing does not reset the connection before the client has read the answer.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
#: How often buffering connections are checked against their deadlines, at most.
SWEEP_SECONDS = 0.25


@dataclass
class Incoming:
    """A connection the loop is reading a request from (or draining before it closes)."""

    buffer: RequestBuffer
    deadline: float
    body_start: float = 0.0
    reserved: int = 0  # bytes of MAX_BUFFERED_BYTES this connection holds (what it has sent)
    health: bool = False
    lingering: bool = False
    discarded: int = 0


class BufferedThreadWorker(ThreadWorker):
    """gthread whose event loop buffers whole requests, enforces deadlines and sheds overload."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = Settings.from_env()
        self.buffering: dict[Any, Incoming] = {}
        self.inflight = 0  # requests admitted to the app pool and not finished (queued or running)
        self.health_inflight = 0
        self.reserved_bytes = 0
        # Its threads start on the first probe, in the worker process (never in the master).
        self.health_pool = futures.ThreadPoolExecutor(HEALTH_THREADS, thread_name_prefix="health")
        self._next_sweep = 0.0
        self._protected: list[re.Pattern[str]] = []
        self._error_body: Callable[[str, str], dict[str, Any]] = lambda message, path: {"error": message}
        self._key_matches: Callable[[str | None, str], bool] = lambda presented, expected: False
        self._shed_counter: Any = None
        self._closed_counter: Any = None

    # -- start ---------------------------------------------------------------------------------

    def init_process(self) -> None:
        if self.cfg.is_ssl:
            raise RuntimeError("BufferedThreadWorker serves plain HTTP/1.x only; end TLS in front of it")
        # The HTTP layer, imported in the worker only (see the module docstring).
        from api.errors import error_body
        from api.middleware import metrics, security

        self._error_body = error_body
        self._key_matches = security.key_matches
        self._shed_counter = metrics.SHED_REQUESTS
        self._closed_counter = metrics.DEADLINE_CLOSES
        header_protected = [rule for rule in security.PROTECTED_RULES if rule not in security.FORM_KEY_RULES]
        self._protected = [re.compile(re.sub(r"<[^>]+>", "[^/]+", rule)) for rule in header_protected]
        self._api_key_header = security.API_KEY_HEADER
        super().init_process()  # loads the app, then runs the loop until the worker stops

    # -- intake: every request goes through buffering first --------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                # Out of file descriptors: accept no more until a connection closes, instead of
                # spinning on a listener that stays readable (run() re-enables accepting).
                self.log.warning("out of file descriptors at %d connections; not accepting", self.nr_conns)
                self.worker_connections = max(1, self.nr_conns)
                return
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._buffer(TConn(self.cfg, sock, addr, listener.getsockname()), b"")  # TConn: non-blocking

    def on_client_socket_readable(self, conn: Any, client: socket.socket) -> None:
        """A kept-alive connection has its next request coming: buffer it like a new one."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._buffer(conn, b"")

    def enqueue_req(self, conn: Any) -> None:
        """Only reached from ``finish_request`` when gunicorn holds bytes of a pipelined next request."""
        rest = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)
        self._buffer(conn, rest)

    def _buffer(self, conn: Any, initial: bytes) -> None:
        conn.parser = None  # each request gets a fresh gunicorn parser over its own bytes
        conn.initialized = False
        buffer = RequestBuffer(MAX_HEAD_BYTES, self.settings.max_upload_bytes, initial)
        incoming = Incoming(buffer, deadline=time.monotonic() + self.settings.header_timeout_seconds)
        self.buffering[conn] = incoming
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        if initial:
            if not self._reserve(incoming, len(initial)):
                self._shed(conn, _path_of(buffer), "buffer_full", early=True)
                return
            self._advance(conn, incoming)

    def _on_readable(self, conn: Any, sock: socket.socket) -> None:
        incoming = self.buffering.get(conn)
        if incoming is None:
            return
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if incoming.lingering:
            incoming.discarded += len(data)
            if incoming.discarded > LINGER_BYTES:
                self._close(conn)
            return
        if not self._reserve(incoming, len(data)):
            self._shed(conn, _path_of(incoming.buffer), "buffer_full", early=True)
            return
        incoming.buffer.feed(data)
        self._advance(conn, incoming)

    def _advance(self, conn: Any, incoming: Incoming) -> None:
        buffer = incoming.buffer
        had_head = buffer.head is not None
        try:
            buffer.scan()
        except Reject as exc:
            self.log.info("refused a request from %s: %d %s", _peer(conn), exc.status, exc.message)
            self._answer_and_close(conn, exc.status, exc.message, _path_of(buffer))
            return
        head = buffer.head
        if head is None:
            return
        if not had_head and not self._on_head(conn, incoming, head):
            return
        if buffer.complete:
            self._dispatch(conn, incoming, head)
            return
        received = buffer.body_received
        settings = self.settings
        incoming.deadline = (
            incoming.body_start + settings.body_timeout_seconds + received / settings.body_min_rate_bytes
        )

    def _on_head(self, conn: Any, incoming: Incoming, head: Head) -> bool:
        """The header block has ended: admit the request's body, or answer now. False: answered."""
        buffer = incoming.buffer
        incoming.body_start = time.monotonic()
        incoming.health = head.method in ("GET", "HEAD") and head.path in HEALTH_PATHS
        if head.expect_continue and not buffer.complete:
            if self.settings.api_key and not self._key_ok(head):
                self._answer_and_close(
                    conn,
                    401,
                    f"missing or wrong API key: send it in the {self._api_key_header} header or as "
                    "'Authorization: Bearer <key>'",
                    head.target,
                    extra=b'WWW-Authenticate: Bearer realm="object-detector"\r\n',
                )
                return False
            if not incoming.health and self._full():
                self._shed(conn, head.target, "queue_full", early=True)
                return False
            buffer.drop_expect()
            try:
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            except OSError:
                self._close(conn)
                return False
        return True

    def _key_ok(self, head: Head) -> bool:
        """The API key check the app makes, on the header alone, for ``Expect`` requests to routes
        whose key can only come in a header; anything it does not recognise is left to the app."""
        if head.method != "POST" or not any(p.fullmatch(head.path) for p in self._protected):
            return True
        presented = (head.get(self._api_key_header.lower()) or "").strip() or None
        if presented is None:
            scheme, _, token = (head.get("authorization") or "").partition(" ")
            presented = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        return self._key_matches(presented, self.settings.api_key or "")

    def _reserve(self, incoming: Incoming, size: int) -> bool:
        """Count bytes received against MAX_BUFFERED_BYTES. Only bytes actually received count, not
        a declared Content-Length: announcing a big body and sending nothing must not use it up."""
        if self.reserved_bytes + size > self.settings.max_buffered_bytes:
            return False
        incoming.reserved += size
        self.reserved_bytes += size
        return True

    def _full(self) -> bool:
        return self.inflight >= self.cfg.threads + self.settings.max_queue

    # -- a complete request: to a thread, or shed ----------------------------------------------

    def _dispatch(self, conn: Any, incoming: Incoming, head: Head) -> None:
        buffer = incoming.buffer
        target = head.target
        if incoming.health:
            if self.health_inflight >= HEALTH_BACKLOG:
                self._shed(conn, target, "health_backlog")
                return
        elif self._full():
            self._shed(conn, target, "queue_full")
            return
        self._leave(conn)
        conn.init()  # gunicorn's HTTP/1 parser on the socket; sets it blocking
        conn.parser.unreader.unread(buffer.request_bytes())  # the pool thread never reads the socket
        conn.data_ready = True
        # A client that stops reading its response must not hold a thread: bound each send (and,
        # as a safety net, any read) by the body timeout.
        seconds = self.settings.body_timeout_seconds
        timeout = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))  # struct timeval
        try:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        except OSError:
            self._close(conn)
            return
        queued_at = time.monotonic()
        if incoming.health:
            self.health_inflight += 1
            job = self.health_pool.submit(self.handle, conn)
        else:
            self.inflight += 1
            job = self.tpool.submit(self._handle_app, conn, target, queued_at)
        job.add_done_callback(lambda fut: self.method_queue.defer(self._finished, conn, fut, incoming.health))

    def _handle_app(self, conn: Any, target: str, queued_at: float) -> Any:
        """In a pool thread: run the request, unless it waited too long for this thread."""
        if time.monotonic() - queued_at > self.settings.max_queue_wait_seconds:
            self._count_shed("queue_wait")
            try:
                conn.sock.sendall(self._busy_response(target))
            except OSError:
                pass
            return False
        return self.handle(conn)

    def _finished(self, conn: Any, fut: futures.Future[Any], health: bool) -> None:
        if health:
            self.health_inflight -= 1
        else:
            self.inflight -= 1
        self.finish_request(conn, fut)

    # -- answers from the loop -----------------------------------------------------------------

    def _busy_response(self, target: str) -> bytes:
        retry = self.settings.retry_after_seconds
        return self._response(
            503, f"server busy: too many requests; retry after {retry} s", target, f"Retry-After: {retry}\r\n".encode()
        )

    def _response(self, status: int, message: str, target: str, extra: bytes = b"") -> bytes:
        body = json.dumps(self._error_body(message, target.split("?", 1)[0] or "/")).encode()
        head = (
            f"HTTP/1.1 {status} {reason(status)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n"
        )
        return head.encode() + extra + b"\r\n" + body

    def _shed(self, conn: Any, target: str, why: str, early: bool = False) -> None:
        self._count_shed(why)
        self._send_and_linger(conn, self._busy_response(target), linger=early)

    def _answer_and_close(self, conn: Any, status: int, message: str, target: str, extra: bytes = b"") -> None:
        self._send_and_linger(conn, self._response(status, message, target, extra), linger=True)

    def _send_and_linger(self, conn: Any, payload: bytes, linger: bool) -> None:
        """Send a small answer without blocking, then close. With ``linger``, the client may still be
        sending its body: stop writing, and read and discard for a moment before closing, so the
        close does not reset the connection before the client has read the answer."""
        self._leave(conn)
        try:
            conn.sock.send(payload)
        except OSError:
            linger = False
        if linger:
            self._linger(conn)
        else:
            self._close(conn)

    def _linger(self, conn: Any) -> None:
        """Half-close and drain on the loop, without blocking it (gthread's own graceful close
        blocks the loop for up to 2 s per connection whose client does not close its side)."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        except (OSError, ValueError, KeyError):
            self._close(conn)
            return
        self.buffering[conn] = Incoming(RequestBuffer(0, 0), time.monotonic() + LINGER_SECONDS, lingering=True)

    def finish_request(self, conn: Any, fs: futures.Future[Any]) -> None:
        """On the loop, when a pool thread is done: keep-alive as gthread does; a close lingers
        without blocking the loop."""
        if not fs.cancelled() and fs.exception() is None and fs.result():
            super().finish_request(conn, fs)
        else:
            self._linger(conn)

    def _leave(self, conn: Any) -> None:
        incoming = self.buffering.pop(conn, None)
        if incoming is not None:
            self.reserved_bytes -= incoming.reserved
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _close(self, conn: Any) -> None:
        self._leave(conn)
        self.nr_conns -= 1
        conn.close()

    def _count_shed(self, why: str) -> None:
        if self._shed_counter is not None:
            self._shed_counter.labels(why).inc()

    # -- deadlines -----------------------------------------------------------------------------

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # Wake often enough to enforce deadlines while requests are arriving.
        super().wait_for_and_dispatch_events(min(timeout, SWEEP_SECONDS) if self.buffering else timeout)

    def murder_pending(self) -> None:
        """Called by ``run()`` on every turn of the loop, also while stopping: close buffering
        connections past their deadline (408), and finished lingering ones."""
        super().murder_pending()
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        for conn, incoming in list(self.buffering.items()):
            if incoming.lingering:
                if incoming.deadline <= now:
                    self._close(conn)
            elif not self.alive and not incoming.buffer.started:
                self._close(conn)  # stopping: a connection that has sent nothing gets no more time
            elif incoming.deadline <= now and not incoming.buffer.started:
                self._close(conn)  # an idle connection that never began a request: close quietly
            elif incoming.deadline <= now:
                phase = "body" if incoming.buffer.head is not None else "header"
                if self._closed_counter is not None:
                    self._closed_counter.labels(phase).inc()
                self.log.debug("closing %s: request %s not received in time", _peer(conn), phase)
                self._answer_and_close(
                    conn, 408, f"request {phase} not received in time", _path_of(incoming.buffer), b""
                )


def _path_of(buffer: RequestBuffer) -> str:
    """The request's target for the error body's shape, if the request line has arrived."""
    if buffer.head is not None:
        return buffer.head.target
    line = bytes(buffer.data[:1024]).split(b"\r\n", 1)[0].split(b" ")
    return line[1].decode("latin-1") if len(line) >= 2 and line[1].startswith(b"/") else "/"


def _peer(conn: Any) -> str:
    client = conn.client
    return f"{client[0]}:{client[1]}" if isinstance(client, tuple) and len(client) >= 2 else str(client)
