"""kill -9 one of two gunicorn workers under load: the master replaces it, only the requests the dead
worker held fail, and readiness shows the new worker loading until its model is up.

Which worker accepts a probe is up to the kernel, so the replacement's "loading" state is read
from the per-worker ``objdet_model_ready`` gauge, which any worker reports for all of them."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import IMAGES, require
from tests.support.load import Load, read_images
from tests.support.server import GunicornServer

pytestmark = [pytest.mark.slow, pytest.mark.load]

CLIENTS = 8
PHOTOS = ("dog.jpg", "giraffe.jpg", "baby-bear.jpg", "horses.jpg")


class ReadinessWatch:
    """Polls ``/health/ready`` on fresh connections (so either worker may answer), recording the bodies."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/health/ready"
        self.seen: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                response = requests.get(self.url, timeout=5, headers={"Connection": "close"})
                self.seen.append((response.status_code, response.json()["status"]))
            except requests.RequestException:
                pass  # a connection to the dying worker; the load clients count those
            time.sleep(0.05)

    def __enter__(self) -> ReadinessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def test_killed_worker_is_replaced_and_only_its_requests_fail(gunicorn_env, tmp_path: Path) -> None:
    images = read_images([require(IMAGES / name) for name in PHOTOS])
    # This test is about the kill, not about shedding: on a busy machine the surviving worker's
    # queue may wait longer than MAX_QUEUE_WAIT_SECONDS, which would (rightly) shed with 503.
    env = {**gunicorn_env, "WORKERS": "2", "THREADS": "4", "MAX_QUEUE_WAIT_SECONDS": "120", "MAX_QUEUE": "64"}
    with GunicornServer(env, tmp_path / "gunicorn.log") as server:
        server.wait_ready(workers=2)
        before = server.worker_pids()
        with Load(server.url, images, clients=CLIENTS, max_seconds=240) as load:
            server.wait_until(lambda: sum(o.ok for o in load.results()) >= 20, timeout=60, what="load to run")
            victim = before[0]
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            with ReadinessWatch(server.url) as watch:
                # Deterministic view of each worker's readiness: the replacement shows up not ready.
                server.wait_until(
                    lambda: any(pid not in before and not ready for pid, ready in server.worker_readiness().items()),
                    timeout=60,
                    what="the replacement worker to report 'loading'",
                    interval=0.05,
                )
                assert victim not in server.worker_readiness()  # the dead worker's gauge is gone
                server.wait_ready(workers=2, timeout=180)
                recovered_at = time.monotonic()
                # Keep the load on the two ready workers until enough requests made after recovery answered.
                server.wait_until(
                    lambda: sum(o.ok and o.started > recovered_at for o in load.results()) >= 2 * CLIENTS,
                    timeout=120,
                    what="requests after the recovery",
                )
            outcomes = load.stop()

    failures = [o for o in outcomes if not o.ok]
    print(
        f"\n{len(outcomes)} requests, {len(failures)} failed: {[o.error for o in failures]}; readiness seen: "
        f"{sorted(set(watch.seen))}; recovered {recovered_at - killed_at:.1f} s after the kill"
    )
    after_recovery = [o for o in outcomes if o.started > recovered_at]
    assert sum(o.ok for o in outcomes if o.started > killed_at) > 0, "nothing was served after the kill"
    assert len(failures) <= CLIENTS, failures  # each client had at most one request or connection on the victim
    assert all(o.started < recovered_at for o in failures), failures  # ...none once both workers were ready again
    assert all(o.error is not None for o in failures), failures  # dropped connections, never an HTTP error
    assert after_recovery and all(o.ok for o in after_recovery)
    # Probes that reached a worker got its true state: ready, or the replacement still loading.
    assert watch.seen and set(watch.seen) <= {(200, "ok"), (503, "loading")}, watch.seen
