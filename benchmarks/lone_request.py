"""A lone request on the idle cores: the service as shipped against LONE_REQUEST_THREADS=1, A/B.

    python benchmarks/lone_request.py                          # tflite-int8, 8 rounds (~3 min)
    python benchmarks/lone_request.py --backend tflite-float
    python benchmarks/lone_request.py --quick                  # smoke run: v1-quant, 2 rounds

Two gunicorn servers of the same model run side by side, one with the default (a lone request's
network and resize use the worker's cores) and one with every request on one core. Each round
measures both, in A-B then B-A order, at 4 clients (requests/s) and then at 1 client (p50), so
drifts in the machine's load fall on both alike. The report gives the medians over the rounds
and their ratios: the 1-client p50 should drop, the 4-client rate should not. ``bench.py``
reports the same ratios from its fixed-order bursts; this script exists because on a shared
machine those move by ±0.07 from run to run. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench  # noqa: E402 - needs ROOT on sys.path
from benchmarks.machine import cpu_model  # noqa: E402 - needs ROOT on sys.path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="tflite-int8", choices=["tflite-int8", "tflite-float", "v1-quant"])
    parser.add_argument("--rounds", type=int, default=8, help="A-B / B-A rounds")
    parser.add_argument("--requests", type=int, default=80, help="requests per 4-client burst (30 at 1 client)")
    parser.add_argument("--quick", action="store_true", help="smoke run: v1-quant, 2 rounds, 8 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.backend, args.rounds, args.requests = "v1-quant", 2, 8
    setup = bench.parse_args(["--backends", args.backend, "--one-core", args.backend] + (["--quick"] * args.quick))
    bodies = [bench.multipart(p.read_bytes()) for p in setup.image_files]
    single = f"{args.backend}:1core"
    load = setup.load
    with tempfile.TemporaryDirectory(prefix="lone-") as tmp:
        work = Path(tmp)
        models = bench.prepare_models(setup, work)
        servers = {name: bench.Server(name, models[name], work, setup) for name in (args.backend, single)}
        try:
            for server in servers.values():
                server.wait_ready()
            time.sleep(1)  # the lone-request runner may still be building when the worker is ready
            posters = {name: bench.poster(server, bodies) for name, server in servers.items()}
            rates: dict[str, list[float]] = {name: [] for name in servers}
            p50s: dict[str, list[float]] = {name: [] for name in servers}
            for done in range(args.rounds):
                order = list(servers) if done % 2 == 0 else list(servers)[::-1]
                for name in order:
                    rates[name].append(bench.timed_requests(name, 4, args.requests, posters[name]).rate)
                    time.sleep(0.3)  # the worker forgets the busy stretch (QUIET_SECONDS)
                    p50s[name].append(
                        bench.timed_requests(name, 1, max(4, args.requests * 3 // 8), posters[name]).pct(50)
                    )
        finally:
            for server in servers.values():
                server.stop()
    rate = {name: statistics.median(values) for name, values in rates.items()}
    p50 = {name: statistics.median(values) for name, values in p50s.items()}
    rows = [
        [name, f"{rate[name]:.1f}", " ".join(f"{v:.1f}" for v in rates[name]), f"{p50[name]:.1f}"] for name in servers
    ]
    report = [
        f"## Lone request, {args.backend}: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"CPU: {cpu_model()}, load average at start {load:.1f}; {args.rounds} rounds A-B / B-A; "
        f"{len(bodies)} photos; WORKERS={setup.workers} THREADS={setup.threads} ENGINE_THREADS=0 (= {setup.engine_threads})"
        + ("; **--quick: smoke run, numbers meaningless**" if args.quick else ""),
        "",
        bench.table(rows, ["server", "4 clients: requests/s (median)", "per round", "1 client: p50 ms (median)"]),
        "",
        bench.table(
            [
                [f"1-client p50, {args.backend} / {single}", f"{p50[args.backend] / p50[single]:.2f}"],
                [f"4-client requests/s, {args.backend} / {single}", f"{rate[args.backend] / rate[single]:.2f}"],
            ],
            ["ratio (same run)", "value"],
        ),
    ]
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
