"""Real HTTP servers for tests: the app under werkzeug in a thread, or gunicorn as a subprocess.

Everything binds to 127.0.0.1 on a free port, waits with a deadline, and is stopped by the
context manager that started it, so no test leaves a server running.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
_READY_SERIES = re.compile(r'^objdet_model_ready\{pid="(\d+)"\} (\S+)$', re.MULTILINE)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def model_env(assets_dir: Path, model_url: str, model_sha256: str) -> dict[str, str]:
    """Environment that makes the service serve a model the fetcher installed under ``assets_dir``."""
    return {"ASSETS_DIR": str(assets_dir), "MODEL_URL": model_url, "MODEL_SHA256": model_sha256}


@contextmanager
def serve_app(app) -> Iterator[str]:
    """Serve a WSGI ``app`` with werkzeug in a thread; yields its base URL."""
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


class GunicornServer:
    """``gunicorn -c gunicorn.conf.py`` from the repo root, on 127.0.0.1 only, logging to a file.

    ``env`` is added to this process's environment (``model_env`` plus any setting, e.g.
    ``WORKERS``). Use it as a context manager: leaving it stops the server for sure.
    """

    def __init__(self, env: Mapping[str, str], log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = Path(log_path)
        self.env = {**os.environ, "PORT": str(self.port), "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **env}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes a fresh one
        self.proc: subprocess.Popen | None = None

    def start(self) -> GunicornServer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"{HOST}:{self.port}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "start() first"
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _fail(self, message: str) -> None:
        raise AssertionError(f"{message}\n--- gunicorn log (last 3000 chars) ---\n{self.log_text()[-3000:]}")

    def wait_until(self, predicate, timeout: float, what: str, interval: float = 0.2) -> None:
        """Poll ``predicate()`` until true; fail with the log if the server exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                self._fail(f"gunicorn exited with {self.proc.returncode} while waiting for {what}")
            try:
                if predicate():
                    return
            except requests.RequestException:
                pass  # not listening yet
            time.sleep(interval)
        self._fail(f"timed out after {timeout} s waiting for {what}")

    def worker_readiness(self) -> dict[int, bool]:
        """Each live worker's pid and whether its model is loaded, from ``/metrics`` (any worker
        answers for all: their values are shared through ``PROMETHEUS_MULTIPROC_DIR``)."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        return {int(pid): float(value) == 1.0 for pid, value in _READY_SERIES.findall(text)}

    def ready_workers(self) -> int:
        return sum(self.worker_readiness().values())

    def wait_ready(self, workers: int = 1, timeout: float = 180) -> GunicornServer:
        """Wait until ``/health/ready`` answers 200 and ``workers`` workers have their model loaded."""
        self.wait_until(
            lambda: requests.get(f"{self.url}/health/ready", timeout=5).status_code == 200, timeout, "/health/ready"
        )
        if workers > 1:
            self.wait_until(lambda: self.ready_workers() >= workers, timeout, f"{workers} ready workers")
        return self

    def worker_pids(self) -> list[int]:
        """PIDs of the master's live worker processes."""
        import psutil

        return sorted(child.pid for child in psutil.Process(self.pid).children() if child.is_running())

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        """The master's exit code; raises ``subprocess.TimeoutExpired`` if it is still running."""
        assert self.proc is not None, "start() first"
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
