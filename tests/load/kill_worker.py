"""kill -9 one of two gunicorn workers under steady load; report what the clients saw and how long
the replacement took to be ready. The figures of docs/reliability.md ("Worker kill"), from the repo
root::

    python -m tests.load.kill_worker                       # BACKEND from the environment
    BACKEND=tflite-int8 python -m tests.load.kill_worker   # what `make run` serves

It installs the test model as ``tests.load.soak`` does (converting it for ``BACKEND=tflite*``),
starts gunicorn with ``WORKERS=2`` on 127.0.0.1, puts ``--clients`` clients on it for ``--before``
seconds, sends SIGKILL to one worker, and follows:

* the replacement worker: when the master forked it (its process start time), when the per-worker
  ``objdet_model_ready`` gauge of ``/metrics`` first showed it (0 = loading) and when it turned 1;
* ``/health/ready`` on fresh connections (either worker may answer), every 50 ms;
* every client request: those that failed (and why), and those served while one worker was down.

Once both workers are ready it keeps the load for ``--after`` seconds, prints a JSON report and
exits 1 unless: the service answered requests between the kill and the recovery, no more requests
failed than there are clients (each had at most one on the victim), none failed after the recovery,
and no HTTP error (only dropped connections) was seen. ``tests/load/test_worker_crash.py`` checks
the same behaviour in CI; this command measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from tests.load.soak import install_test_model, served_backend
from tests.support.load import Load, percentile, read_images
from tests.support.server import GunicornServer

PHOTOS = ("dog.jpg", "giraffe.jpg", "baby-bear.jpg", "horses.jpg")
WORKERS = 2


class ReadinessProbe:
    """``GET /health/ready`` every ``interval`` s on a fresh connection; (monotonic time, status or error)."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.url = f"{url}/health/ready"
        self.interval = interval
        self.seen: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        while not self._stop.is_set() and time.monotonic() < deadline:
            at = time.monotonic()
            try:
                response = requests.get(self.url, timeout=5, headers={"Connection": "close"})
                status = response.json().get("status", "?")
                self.seen.append((at, f"{response.status_code} {status}"))
            except (requests.RequestException, ValueError) as exc:
                self.seen.append((at, type(exc).__name__))
            time.sleep(self.interval)

    def __enter__(self) -> ReadinessProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def started_at(pid: int) -> float:
    """When process ``pid`` started, on the monotonic clock (to 10 ms: /proc's clock ticks, not
    psutil's ``create_time``, whose boot time is rounded to the second)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    since_boot = float(Path("/proc/uptime").read_text().split()[0])
    now = time.monotonic()
    return now - (since_boot - ticks / os.sysconf("SC_CLK_TCK"))


def run_kill(server: GunicornServer, images, clients: int, before: float, after: float, timeout: float) -> dict:
    with Load(server.url, images, clients=clients, max_seconds=before + after + timeout + 60) as load:
        time.sleep(before)
        workers_before = server.worker_pids()
        victim = workers_before[0]
        with ReadinessProbe(server.url) as probe:
            time.sleep(1.0)  # some probes before the kill
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            forked_at = loading_seen_at = ready_at = None
            replacement = None
            polls = 0
            previous_ask = killed_at
            deadline = killed_at + timeout
            while time.monotonic() < deadline:
                if replacement is None:
                    new = [pid for pid in server.worker_pids() if pid not in workers_before]
                    if new:
                        replacement = new[0]
                        forked_at = started_at(replacement)
                asked_at = time.monotonic()
                try:
                    readiness = server.worker_readiness()
                except requests.RequestException:
                    readiness = {}
                polls += 1
                if replacement is not None and replacement in readiness:
                    if loading_seen_at is None and not readiness[replacement]:
                        loading_seen_at = asked_at
                    if readiness[replacement] and sum(readiness.values()) >= WORKERS:
                        # The gauge turned 1 after the previous poll was sent and before this one was answered.
                        ready_at, ready_after = time.monotonic(), previous_ask
                        break
                previous_ask = asked_at
                time.sleep(0.05)
            if ready_at is None:
                raise AssertionError(f"no replacement worker ready within {timeout} s of the kill")
            time.sleep(after)
        outcomes = load.stop()
    workers_after = server.worker_pids()

    def summary(selected) -> dict:
        ok = [o.seconds * 1000 for o in selected if o.ok]
        return {
            "requests": len(selected),
            "ok": len(ok),
            "p50_ms": round(percentile(ok, 0.5), 1),
            "p99_ms": round(percentile(ok, 0.99), 1),
        }

    failures = [o for o in outcomes if not o.ok]
    before_kill = [o for o in outcomes if o.started < killed_at]
    degraded = [o for o in outcomes if killed_at <= o.started < ready_at]
    recovered = [o for o in outcomes if o.started >= ready_at]
    probes_after_kill = Counter(status for at, status in probe.seen if killed_at <= at < ready_at)
    probes_before_kill = Counter(status for at, status in probe.seen if at < killed_at)
    rel = lambda t: None if t is None else round(t - killed_at, 2)  # noqa: E731
    return {
        "clients": clients,
        "victim": victim,
        "replacement": replacement,
        "workers_after": workers_after,
        "requests": len(outcomes),
        "failed": len(failures),
        "failed_errors": dict(Counter(o.status if o.error is None else shorten(o.error) for o in failures)),
        "failed_started_s_after_kill": sorted(rel(o.started) for o in failures),
        "failed_error_texts": sorted({o.error or str(o.status) for o in failures}),
        "before_kill": summary(before_kill),
        "kill_to_ready": summary(degraded),
        "after_ready": summary(recovered),
        "replacement_forked_s": rel(forked_at),
        "replacement_seen_loading_s": rel(loading_seen_at),
        "replacement_ready_s": rel(ready_at),
        "replacement_ready_not_before_s": rel(ready_after),
        "metrics_polls": polls,
        "health_ready_before_kill": dict(probes_before_kill),
        "health_ready_kill_to_ready": dict(probes_after_kill),
    }


def shorten(error: str) -> str:
    """An error's kind and its innermost named cause, e.g. ``ConnectionError (RemoteDisconnected)``."""
    kind = error.split(":", 1)[0]
    causes = [c for c in re.findall(r"\b([A-Z][A-Za-z]*(?:Error|Disconnected|Reset))\(", error) if c != kind]
    return f"{kind} ({causes[-1]})" if causes else kind


def passed(report: dict, clients: int) -> bool:
    return (
        report["kill_to_ready"]["ok"] > 0
        and report["failed"] <= clients
        and all(t < report["replacement_ready_s"] for t in report["failed_started_s_after_kill"])
        and report["after_ready"]["requests"] > 0
        and report["after_ready"]["ok"] == report["after_ready"]["requests"]
        and all(not str(kind).isdigit() for kind in report["failed_errors"])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--before", type=float, default=15, help="seconds of load before the kill (default 15)")
    parser.add_argument("--after", type=float, default=15, help="seconds of load after the recovery (default 15)")
    parser.add_argument("--timeout", type=float, default=180, help="longest wait for the replacement (default 180)")
    parser.add_argument("--threads", type=int, default=4, help="THREADS per worker (default 4, as in k8s/)")
    parser.add_argument("--assets-dir", type=Path, help="where to install the test model (default: a temp dir)")
    args = parser.parse_args(argv)

    from tests.conftest import IMAGES

    assets = args.assets_dir or Path(tempfile.mkdtemp(prefix="kill-assets-"))
    env = {**install_test_model(assets), "WORKERS": str(WORKERS), "THREADS": str(args.threads)}
    images = read_images([IMAGES / name for name in PHOTOS])
    log_path = assets / "kill-gunicorn.log"
    log_from = log_path.stat().st_size if log_path.exists() else 0  # the server appends to it
    load_start = os.getloadavg()
    with GunicornServer(env, log_path) as server:
        server.wait_ready(workers=WORKERS)
        report = run_kill(server, images, args.clients, args.before, args.after, args.timeout)
    log = log_path.read_bytes()[log_from:].decode(errors="replace")
    context = {
        "backend": served_backend(log),
        "model_ready_in_log": re.findall(r"model \S+ ready in ([\d.]+ s)", log),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    ok = passed(report, args.clients)
    print(json.dumps({**report, **context, "passed": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
