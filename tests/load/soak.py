"""Soak test: concurrent clients against a real gunicorn for minutes; no errors, no memory creep.

Full run (the README's figures), from the repo root::

    python -m tests.load.soak --duration 300 --clients 8

It installs the test model (MODEL_URL + MODEL_SHA256, else ../shared's SSDLite) through the fetcher
into a temporary assets dir (with ``BACKEND=tflite`` or ``tflite-int8``, converting it first as
``make run`` does), starts gunicorn on 127.0.0.1, warms up, then measures. The workers'
resident memory is read at the end of the warm-up and at the end; the run fails (exit 1) on any
error or on >= 10 % growth.
``tests/load/test_soak.py`` runs the same thing for ~25 s in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from tests.support.load import Load, percentile, read_images
from tests.support.models import convert_for_backend
from tests.support.server import GunicornServer

PHOTOS = ("dog.jpg", "giraffe.jpg", "baby-bear.jpg", "horses.jpg", "person.jpg", "kite.jpg", "jockey.jpg", "eagle.jpg")
MAX_GROWTH = 0.10


@dataclass(frozen=True)
class SoakReport:
    seconds: float
    clients: int
    requests: int
    errors: int
    requests_per_second: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    rss_after_warmup_mb: float
    rss_end_mb: float
    rss_max_mb: float
    rss_growth: float

    @property
    def passed(self) -> bool:
        return self.errors == 0 and self.requests > 0 and self.rss_growth < MAX_GROWTH


class RssSampler:
    """Samples the workers' total resident memory once a second (bounded by ``max_seconds``)."""

    def __init__(self, server: GunicornServer, max_seconds: float) -> None:
        self.server = server
        self.max_seconds = max_seconds
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return sum(psutil.Process(pid).memory_info().rss for pid in self.server.worker_pids())

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.wait(1.0) and time.monotonic() < deadline:
            self.samples.append(self.rss())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def run_soak(
    server: GunicornServer, images: list[tuple[str, bytes]], duration: float, warmup: float, clients: int
) -> SoakReport:
    """Warm up for ``warmup`` s, then measure ``duration`` s of ``clients`` concurrent clients."""
    mb = 1024 * 1024
    with Load(server.url, images, clients=clients, max_seconds=warmup + duration + 60) as load:
        time.sleep(warmup)
        with RssSampler(server, duration + 30) as sampler:
            rss_warm = sampler.rss()
            measure_from = time.monotonic()
            time.sleep(duration)
            measure_to = time.monotonic()
            rss_end = sampler.rss()
        outcomes = load.stop()
    elapsed = measure_to - measure_from
    measured = [o for o in outcomes if measure_from <= o.started < measure_to]
    errors = sum(not o.ok for o in outcomes)  # warm-up and wind-down included: no error is acceptable
    latencies = [o.seconds * 1000 for o in measured if o.ok]
    return SoakReport(
        seconds=round(elapsed, 1),
        clients=clients,
        requests=len(measured),
        errors=errors,
        requests_per_second=round(len(measured) / elapsed, 2),
        latency_p50_ms=round(percentile(latencies, 0.50), 1),
        latency_p95_ms=round(percentile(latencies, 0.95), 1),
        latency_p99_ms=round(percentile(latencies, 0.99), 1),
        latency_max_ms=round(max(latencies, default=0), 1),
        rss_after_warmup_mb=round(rss_warm / mb, 1),
        rss_end_mb=round(rss_end / mb, 1),
        rss_max_mb=round(max([*sampler.samples, rss_end]) / mb, 1),
        rss_growth=round((rss_end - rss_warm) / rss_warm, 4),
    )


def install_test_model(assets: Path) -> dict[str, str]:
    """Install (and convert for ``BACKEND``) the test model under ``assets``; the server's environment."""
    from config import Settings
    from core.artifacts.install import ensure_model
    from tests.conftest import model_pin
    from tests.support.server import model_env

    url, sha256 = model_pin()
    settings = Settings(model_url=url, model_sha256=sha256, assets_dir=assets)
    model_dir = ensure_model(settings.source, settings.models_dir)
    convert_for_backend(model_dir, os.environ.get("BACKEND", "auto").lower())
    return model_env(assets, url, sha256)


def served_backend(log: str) -> str | None:
    """The backend the (last) worker loaded, from its log line."""
    found = re.findall(r"loading \S+ model \S+ with the (\S+) backend", log)
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=300, help="measured seconds (default 300)")
    parser.add_argument("--warmup", type=float, default=30, help="seconds of load before measuring (default 30)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (default 1)")
    parser.add_argument("--assets-dir", type=Path, help="where to install the test model (default: a temp dir)")
    args = parser.parse_args(argv)

    from tests.conftest import IMAGES

    assets = args.assets_dir or Path(tempfile.mkdtemp(prefix="soak-assets-"))
    env = {**install_test_model(assets), "WORKERS": str(args.workers)}
    images = read_images([IMAGES / name for name in PHOTOS])
    load_start = os.getloadavg()
    with GunicornServer(env, assets / "soak-gunicorn.log") as server:
        server.wait_ready(workers=args.workers)
        report = run_soak(server, images, args.duration, args.warmup, args.clients)
        backend = served_backend(server.log_text())
    context = {"backend": backend, "loadavg_start": load_start, "loadavg_end": os.getloadavg()}
    print(json.dumps({**asdict(report), **context, "passed": report.passed}, indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
