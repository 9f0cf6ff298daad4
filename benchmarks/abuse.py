"""Slow clients and overload, measured against the real gunicorn and model (docs/reliability.md).

    python benchmarks/abuse.py                  # about 4 minutes; prints a markdown report
    python benchmarks/abuse.py --seconds 6      # shorter windows

It starts ``gunicorn -c gunicorn.conf.py`` (1 worker, 4 threads, the model from MODEL_URL /
MODEL_SHA256 or ../shared's SSDLite) and measures:

* **Slow clients:** a normal client (1 at a time, a photo per request, a new connection each) alone,
  then while 200 header tricklers and 200 body tricklers (1 byte/s, reconnecting when closed) are
  held, then alone again: its p50/p99 and the ratio loaded ÷ unloaded within the same run, how many
  slow connections were open at once, and when they were closed. The same client against plain
  gthread (``--worker-class gthread``) with 200 header tricklers, for contrast.
* **Overload:** 64 closed-loop clients (no pause between requests): requests accepted and shed per
  second, p99 of the accepted ones and of the 503s, and ``/health/ready`` latency meanwhile.
* **Cost:** 4 clients against this worker and against plain gthread, servers side by side, taking
  turns in short windows; the ratio of their request rates.

Numbers on a shared machine are noisy: compare the ratios within one run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402 - needs ROOT on sys.path
from tests.conftest import IMAGES, SSDLITE_ARCHIVE, SSDLITE_SHA256  # noqa: E402 - needs ROOT on sys.path
from tests.support.abuse import (  # noqa: E402
    HOST,
    ClosedLoop,
    Tricklers,
    multipart,
    once,
    percentile,
    post_bytes,
    summary,
)
from tests.support.server import GunicornServer, model_env  # noqa: E402


def window(port: int, request: bytes, clients: int, seconds: float) -> tuple[list, float]:
    started = time.monotonic()
    with ClosedLoop(port, [request], clients, seconds, timeout=15) as load:
        time.sleep(seconds)
        outcomes = load.stop()
    return outcomes, time.monotonic() - started


def latencies(outcomes) -> list[float]:
    return [o.seconds * 1000 for o in outcomes if o.status == 200]


def probe_latencies(port: int, stop: threading.Event, out: list[float]) -> None:
    request = f"GET /health/ready HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    while not stop.is_set():
        outcome = once(port, request, 10)
        out.append(outcome.seconds * 1000 if outcome.status == 200 else float("inf"))
        time.sleep(0.1)


def slow_clients(server: GunicornServer, request: bytes, seconds: float) -> dict:
    before, t1 = window(server.port, request, 1, seconds)
    with Tricklers(server.port, header=200, body=200, max_seconds=seconds + 25, reconnect=True) as tricklers:
        deadline = time.monotonic() + 20
        while tricklers.open_now < 390 and time.monotonic() < deadline:
            time.sleep(0.1)
        held_at_start = tricklers.open_now
        loaded, t2 = window(server.port, request, 1, seconds)
        held_at_end = tricklers.open_now
        tricklers.stop()
    after, t3 = window(server.port, request, 1, seconds)
    closed = [r for r in tricklers.results if r.closed_after is not None and r.status == 408]
    unloaded = latencies(before) + latencies(after)
    return {
        "unloaded": {**summary(before + after, t1 + t3)},
        "with_400_tricklers": {**summary(loaded, t2)},
        "held_at_start": held_at_start,
        "held_at_end": held_at_end,
        "max_held": tricklers.max_open,
        "p99_ratio": round(percentile(latencies(loaded), 0.99) / percentile(unloaded, 0.99), 2)
        if latencies(loaded) and unloaded
        else None,
        "closed_408": {
            mode: {
                "count": len(group),
                "seconds_min_median_max": [
                    round(min(group), 1),
                    round(statistics.median(group), 1),
                    round(max(group), 1),
                ]
                if group
                else None,
            }
            for mode in ("header", "body")
            for group in [[r.closed_after for r in closed if r.mode == mode]]
        },
    }


def gthread_slow_clients(server: GunicornServer, request: bytes, seconds: float) -> dict:
    with Tricklers(server.port, header=200, max_seconds=seconds + 10, reconnect=True) as tricklers:
        time.sleep(3)
        loaded, t = window(server.port, request, 1, seconds)
        tricklers.stop()
    return {
        "with_200_header_tricklers": summary(loaded, t),
        "tricklers_closed": sum(r.closed_after is not None for r in tricklers.results),
    }


def overload(server: GunicornServer, request: bytes, seconds: float) -> dict:
    stop = threading.Event()
    idle: list[float] = []
    thread = threading.Thread(target=probe_latencies, args=(server.port, stop, idle), daemon=True)
    thread.start()
    time.sleep(3)
    stop.set()
    thread.join()
    stop = threading.Event()
    busy: list[float] = []
    started = time.monotonic()
    with ClosedLoop(server.port, [request], 64, seconds + 5, timeout=15) as load:
        time.sleep(1)
        thread = threading.Thread(target=probe_latencies, args=(server.port, stop, busy), daemon=True)
        thread.start()
        time.sleep(seconds)
        stop.set()
        outcomes = load.stop()
    thread.join()
    elapsed = time.monotonic() - started
    retry = {o.retry_after for o in outcomes if o.status == 503}

    def probe_stats(values: list[float]) -> dict:
        return {
            "count": len(values),
            "failed": sum(v == float("inf") for v in values),
            "p50_ms": round(percentile(values, 0.5) or 0, 1),
            "p99_ms": round(percentile(values, 0.99) or 0, 1),
        }

    return {
        "clients": 64,
        **summary(outcomes, elapsed),
        "retry_after_values": sorted(r or "missing" for r in retry),
        "probe_unloaded": probe_stats(idle),
        "probe_under_overload": probe_stats(busy),
    }


def cost(buffered: GunicornServer, plain: GunicornServer, request: bytes, seconds: float, rounds: int) -> dict:
    rates: dict[str, list[float]] = {"buffered": [], "gthread": []}
    for _ in range(rounds):
        for name, server in (("buffered", buffered), ("gthread", plain)):
            outcomes, elapsed = window(server.port, request, 4, seconds)
            rates[name].append(sum(o.status == 200 for o in outcomes) / elapsed)
    total = {name: sum(values) / len(values) for name, values in rates.items()}
    return {
        "clients": 4,
        "req_per_s_each_round": {name: [round(v, 1) for v in values] for name, values in rates.items()},
        "mean_req_per_s": {name: round(v, 1) for name, v in total.items()},
        "ratio_buffered_over_gthread": round(total["buffered"] / total["gthread"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12, help="length of each measuring window")
    parser.add_argument("--rounds", type=int, default=3, help="turns each server takes in the cost comparison")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="abuse-"))
    url = os.environ.get("MODEL_URL") or SSDLITE_ARCHIVE.as_uri()
    sha = os.environ.get("MODEL_SHA256") or SSDLITE_SHA256
    from config import Settings
    from core.artifacts.install import ensure_model

    settings = Settings(model_url=url, model_sha256=sha, assets_dir=work / "assets")
    ensure_model(settings.source, settings.models_dir)  # what the image's build does
    base = {**model_env(work / "assets", url, sha), "WORKERS": "1", "THREADS": "4", "LOG_LEVEL": "WARNING"}
    body, content_type = multipart((IMAGES / "dog.jpg").read_bytes(), filename="dog.jpg")
    request = post_bytes("/model/predict", body, content_type)
    results: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    with (
        GunicornServer(base, work / "buffered.log") as buffered,
        GunicornServer({**base, "GUNICORN_CMD_ARGS": "--worker-class gthread"}, work / "gthread.log") as plain,
    ):
        buffered.wait_ready()
        plain.wait_ready()
        pids = buffered.worker_pids()
        print("servers ready", file=sys.stderr)
        results["slow_clients"] = slow_clients(buffered, request, args.seconds)
        print("slow clients done", file=sys.stderr)
        results["gthread_slow_clients"] = gthread_slow_clients(plain, request, args.seconds)
        print("gthread slow clients done", file=sys.stderr)
        results["overload"] = overload(buffered, request, args.seconds)
        print("overload done", file=sys.stderr)
        results["cost"] = cost(buffered, plain, request, args.seconds / 2, args.rounds)
        results["load_average_at_end"] = os.getloadavg()
        results["worker_pids_unchanged"] = buffered.worker_pids() == pids
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
