"""A loopback HTTP server for download tests: serves registered bodies, counts
requests per path, and misbehaves on demand (5xx, truncated bodies, stalls, fixed errors)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    body: bytes | Path
    #: Answer 503 to the first N requests.
    fail_first: int = 0
    #: On the first N requests announce the full Content-Length but send half and close.
    truncate_first: int = 0
    #: On the first N requests wait ``stall`` seconds before answering.
    stall_first: int = 0
    stall: float = 0.0
    #: Answer every request with this status and no body (e.g. 404).
    status: int = 200
    #: Answer 401 unless the request carries exactly this Authorization header.
    authorization: str | None = None
    #: Answer every request with a 302 to this URL.
    redirect: str | None = None

    def data(self) -> bytes:
        return self.body.read_bytes() if isinstance(self.body, Path) else self.body


class LoopbackServer:
    """``with LoopbackServer() as s: url = s.add("/m.tar.gz", Route(...)); ...; s.hits["/m.tar.gz"]``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            n = self.hits[path] + 1
            self.hits[path] = n
            return n

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            n = server.count(self.path)
            if route.authorization and self.headers.get("Authorization") != route.authorization:
                self.send_error(401)
                return
            if route.redirect:
                self.send_response(302)
                self.send_header("Location", route.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.status != 200:
                self.send_error(route.status)
                return
            if n <= route.fail_first:
                self.send_error(503, "try again")
                return
            if n <= route.stall_first:
                time.sleep(route.stall)
            data = route.data()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if n <= route.truncate_first:
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
            else:
                self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests); nothing to report

    return Handler
