"""One-run benchmark: model speed in-process, and the real gunicorn service over loopback HTTP.

    python benchmarks/bench.py                 # full run on ../shared (about a minute)
    python benchmarks/bench.py --quick         # smoke run: tiny counts, the published int8 v1 model only

Per backend (tf = the SSDLite frozen graph on TensorFlow; tflite-float and tflite-int8 = the float and
calibrated int8 models ``python -m core optimize --int8`` makes of it, on LiteRT, served with
BACKEND=tflite and BACKEND=tflite-int8; v1-quant = TF's published int8 SSD MobileNet v1) it measures:

* in-process: ``detector.detect(jpeg_bytes)`` in this process (decode + resize + network + NMS),
  sequentially and from 4 threads: images/s, p50, p95; this process keeps two malloc arenas,
  as the service's workers do;
* http: ``gunicorn -c gunicorn.conf.py`` started as a subprocess on a free loopback port with the
  service's env vars, then 1/2/4/8 keep-alive clients posting the photos: images/s, p50/p95/p99;
* micro-batching (TF graph at batch 1 vs 4, ``ENGINE_THREADS`` calls at once);
* the workers' resident memory (VmRSS and peak VmHWM from /proc) after the load, and the cold
  start: seconds from spawning gunicorn until ``/health/ready`` answers 200;
* a lone request on the idle cores: each backend of ``--one-core`` is also served with
  LONE_REQUEST_THREADS=1 (every request on one core, as before that setting), labelled
  ``<backend>:1core``, and the report gives the 1-client p50 and the 4-client rate of the
  default against it;
* CPU per request, by stage: JPEG decode, resize, network + NMS op, Python post-processing
  (in-process, process CPU time, one call at a time), and HTTP/framework = the worker's CPU
  per request at 1 client (from /proc) minus those.

All servers run side by side and the backends take turns in short bursts, so the load of other
processes falls on each alike. It prints one markdown report (date, CPU, cores, ratios).
Numbers on a shared machine are noisy: compare the ratios within one run. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
BACKENDS = ("tf", "tflite-float", "tflite-int8", "v1-quant")
ROUNDS = 4

from benchmarks.machine import cpu_model  # noqa: E402 - needs ROOT on sys.path
from config import Settings  # noqa: E402 - needs ROOT on sys.path


@dataclass
class Run:
    """Latencies (seconds) of ``count`` requests that took ``wall`` seconds in all."""

    label: str
    concurrency: int
    latencies: list[float]
    wall: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def install(archive: Path, assets: Path) -> Settings:
    """Install a local archive through the real fetcher; the returned settings name it."""
    from config import Settings
    from core.artifacts.install import ensure_model
    from core.artifacts.integrity import hash_file

    settings = Settings(
        model_url=archive.resolve().as_uri(), model_sha256=hash_file(archive)["sha256"], assets_dir=assets
    )
    ensure_model(settings.source, settings.models_dir, show_progress=False)
    return settings


def prepare_models(args, work: Path) -> dict[str, Settings]:
    """Settings per backend, models installed and verified; the float model is converted and
    recorded in the manifest exactly as ``python -m core optimize`` does for the service."""
    assets = work / "assets"
    models: dict[str, Settings] = {}
    if "v1-quant" in args.backends:
        models["v1-quant"] = replace(install(args.quant, assets), backend="tflite")
    if {"tf", "tflite-float", "tflite-int8"} & set(args.backends):
        ssdlite = install(args.ssdlite, assets)
        if "tf" in args.backends:
            models["tf"] = replace(ssdlite, backend="tf")
        if {"tflite-float", "tflite-int8"} & set(args.backends):
            # A subprocess, as a user runs it; it also keeps TensorFlow uninitialised here, so the
            # in-process TF engine below gets the service's thread settings.
            done = subprocess.run(
                [sys.executable, "-m", "core", "optimize", str(ssdlite.model_dir), "--int8"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"python -m core optimize failed:\n{done.stderr[-3000:]}")
            if "tflite-float" in args.backends:
                models["tflite-float"] = replace(ssdlite, backend="tflite")
            if "tflite-int8" in args.backends:
                models["tflite-int8"] = replace(ssdlite, backend="tflite-int8")
    for backend in args.one_core:
        models[f"{backend}:1core"] = replace(models[backend], lone_request_threads=1)
    return models


def timed_requests(label: str, concurrency: int, count: int, call) -> Run:
    """``count`` calls of ``call(i)`` spread over ``concurrency`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        start = time.perf_counter()
        call(i)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    return Run(label, concurrency, latencies, time.perf_counter() - start)


def merged(label: str, concurrency: int, bursts: list[Run]) -> Run:
    return Run(label, concurrency, [t for r in bursts for t in r.latencies], sum(r.wall for r in bursts))


def measure(
    detectors: dict, servers: dict[str, Server], images: list[bytes], bodies: list[tuple[bytes, str]], args
) -> tuple[dict[str, list[Run]], dict[str, list[Run]]]:
    """In-process and HTTP runs for every backend, taking turns in ``ROUNDS`` short bursts.

    In-process means the detector the service would build from the same settings, in this
    process. Taking turns spreads the load of other processes on a shared machine over all
    backends alike, so the ratios between them stay meaningful.
    """
    posters = {b: poster(server, bodies) for b, server in servers.items()}
    rounds = 1 if args.quick else ROUNDS
    per_round = max(1, args.requests // rounds)
    bursts: dict[tuple[str, str, int], list[Run]] = {}
    for _ in range(rounds):
        for backend, detector in detectors.items():
            for concurrency in (1, 4):
                bursts.setdefault((backend, "raw", concurrency), []).append(
                    timed_requests(
                        f"{backend} raw",
                        concurrency,
                        per_round,
                        lambda i, d=detector: d.detect(images[i % len(images)], 0.5),
                    )
                )
            for clients in args.clients:
                bursts.setdefault((backend, "http", clients), []).append(
                    timed_requests(f"{backend} http", clients, per_round, posters[backend])
                )
    raw: dict[str, list[Run]] = {b: [] for b in detectors}
    http: dict[str, list[Run]] = {b: [] for b in detectors}
    for (backend, kind, concurrency), done in bursts.items():
        (raw if kind == "raw" else http)[backend].append(merged(f"{backend} {kind}", concurrency, done))
    return raw, http


def batching_runs(detector, images: list[bytes], args) -> list[tuple[int, float]]:
    """Micro-batching on CPU, in the service's thread setup: ``ENGINE_THREADS`` request threads
    each running batch-1 calls (what the service does) against the same threads each running
    batches of 4 (what a batcher would do). The whole TF graph on 300x300 frames, no decoding;
    it takes any batch size."""
    import numpy as np

    threads = args.engine_threads
    frames = [np.asarray(detector.decode(data).image.resize((300, 300))) for data in images]
    results = []
    for batch in (1, 4):
        stack = np.stack([frames[i % len(frames)] for i in range(batch)])
        detector.predict(stack)
        calls = max(2, args.requests // batch)
        run = timed_requests("batch", threads, calls, lambda i, stack=stack: detector.predict(stack))
        results.append((batch, run.wall * 1000 / (calls * batch)))
    return results


def worker_cpu_seconds(server: Server) -> float:
    """User + system CPU seconds of the server's workers so far (/proc/<pid>/stat)."""
    total = 0
    for pid in server.workers():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def cpu_breakdown(detector, server: Server, images: list[bytes], bodies, count: int) -> dict[str, float]:
    """Milliseconds of CPU per request by stage. In-process, one call at a time, process CPU time
    (TensorFlow's own threads included): decode (JPEG to array), resize (to the network input),
    network + NMS (the engine on an already-resized frame), post-processing (threshold, labels).
    The worker's CPU per request over HTTP at 1 client, minus those, is the HTTP/framework share."""
    import numpy as np

    from core.ssd.engines.resize import resize_into

    size = detector.input_size
    spent = dict.fromkeys(("decode", "resize", "network + NMS", "post-processing"), 0.0)
    for i in range(count):
        data = images[i % len(images)]
        t0 = time.process_time()
        frame = detector.preprocess(detector.decode(data))
        t1 = time.process_time()
        resized = np.empty((size[1], size[0], 3), np.uint8)
        resize_into(frame[0] if frame.ndim == 4 else frame, size, resized)
        t2 = time.process_time()
        raw = detector.predict(resized[None])
        t3 = time.process_time()
        detector.postprocess(raw, 0.5)
        t4 = time.process_time()
        for key, value in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[key] += value
    out = {key: 1000 * value / count for key, value in spent.items()}
    post = poster(server, bodies)
    before = worker_cpu_seconds(server)
    for i in range(count):
        post(i)
    worker = 1000 * (worker_cpu_seconds(server) - before) / count
    out["HTTP/framework"] = worker - sum(out.values())
    out["worker total"] = worker
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="image.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="threshold"\r\n\r\n0.5\r\n--{boundary}--\r\n'
        ).encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class Server:
    """gunicorn from gunicorn.conf.py on a free loopback port, configured through env vars only."""

    def __init__(self, backend: str, settings: Settings, work: Path, args) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "PORT": str(self.port),
            "ASSETS_DIR": str(settings.assets_dir),
            "MODEL_URL": str(settings.model_url),
            "MODEL_SHA256": str(settings.model_sha256),
            "BACKEND": settings.backend,
            "LONE_REQUEST_THREADS": str(settings.lone_request_threads),
            "WORKERS": str(args.workers),
            "THREADS": str(args.threads),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("ENGINE_THREADS", None)
        self.log = (work / f"gunicorn-{backend}.log").open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from spawn to the first 200 from /health/ready."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health/ready")
                if conn.getresponse().status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"not ready after {timeout} s; see {self.log.name}")

    def workers(self) -> list[int]:
        """PIDs of the master's children (the workers)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return []

    def memory_mb(self) -> tuple[float, float]:
        """Largest worker VmRSS and VmHWM (peak), in MB."""
        rss, hwm = [], []
        for pid in self.workers():
            try:
                status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
            except OSError:
                continue
            rss.append(int(status["VmRSS"].split()[0]) / 1024)
            hwm.append(int(status["VmHWM"].split()[0]) / 1024)
        return (max(rss, default=0.0), max(hwm, default=0.0))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def poster(server: Server, bodies: list[tuple[bytes, str]]):
    """A request function for ``timed_requests``: one keep-alive connection per client thread."""
    local = threading.local()

    def post(i: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        body, content_type = bodies[i % len(bodies)]
        conn.request("POST", "/model/predict", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            local.conn = None

    post(0)  # the first request pays for lazy set-up in the worker
    return post


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(args, raw: dict, batching, http: dict, servers: dict, cpu: dict | None = None) -> str:
    out = [
        f"## Benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"CPU: {cpu_model()}, {os.cpu_count()} cores (load average at start {args.load:.1f}); "
        f"Python {platform.python_version()}; images: {len(args.image_files)} photos from {args.images}; "
        f"{args.requests} requests per measurement; server: WORKERS={args.workers} THREADS={args.threads} "
        f"ENGINE_THREADS=0 (= {args.engine_threads})"
        + ("; **--quick: smoke run, numbers meaningless**" if args.quick else ""),
        "",
        "### In-process (decode + resize + network + NMS)",
        "",
    ]
    rows = [
        [
            r.label.split()[0],
            str(r.concurrency),
            f"{r.rate:.1f}",
            f"{1000 / r.rate:.1f}",
            f"{r.pct(50):.1f}",
            f"{r.pct(95):.1f}",
        ]
        for runs in raw.values()
        for r in runs
    ]
    out.append(table(rows, ["backend", "threads", "images/s", "ms/image", "p50 ms", "p95 ms"]))
    out += ["", "### HTTP through gunicorn (loopback, keep-alive clients)", ""]
    rows = [
        [
            r.label.split()[0],
            str(r.concurrency),
            f"{r.rate:.1f}",
            f"{r.pct(50):.1f}",
            f"{r.pct(95):.1f}",
            f"{r.pct(99):.1f}",
        ]
        for runs in http.values()
        for r in runs
    ]
    out.append(table(rows, ["backend", "clients", "requests/s", "p50 ms", "p95 ms", "p99 ms"]))
    out += ["", "### Worker process", ""]
    rows = [[b, f"{s['cold']:.2f}", f"{s['rss']:.0f}", f"{s['hwm']:.0f}"] for b, s in servers.items()]
    out.append(table(rows, ["backend", "cold start to ready (s)", "worker RSS (MB)", "worker peak RSS (MB)"]))
    if cpu:
        out += ["", f"### CPU per request (ms; {args.cpu_requests} requests each, one at a time)", ""]
        stages = list(next(iter(cpu.values())))
        rows = [[b, *(f"{v[k]:.1f}" for k in stages)] for b, v in cpu.items()]
        out.append(table(rows, ["backend", *stages]))
    out += ["", "### Ratios (same run)", ""]
    ratios = []
    for backend, runs in http.items():
        at4 = _at(runs, 4) or runs[-1]
        best_raw = max(r.rate for r in raw[backend])
        ratios.append([f"{backend}: HTTP @{at4.concurrency} clients / best in-process", f"{at4.rate / best_raw:.2f}"])
    for label, runs in http.items():
        backend, _, one_core = label.partition(":")
        if one_core and backend in http:
            lone, single = _at(http[backend], 1), _at(runs, 1)
            busy, busy_single = _at(http[backend], 4), _at(runs, 4)
            if lone and single:
                ratios.append([f"{backend}: HTTP p50 @1 client / {label}", f"{lone.pct(50) / single.pct(50):.2f}"])
            if busy and busy_single:
                ratios.append(
                    [f"{backend}: HTTP requests/s @4 clients / {label}", f"{busy.rate / busy_single.rate:.2f}"]
                )
    if "tf" in raw:
        tf_best = max(r.rate for r in raw["tf"])
        for backend in ("tflite-float", "tflite-int8", "v1-quant"):
            if backend in raw:
                best = max(r.rate for r in raw[backend])
                ratios.append([f"{backend} / tf, in-process images/s", f"{best / tf_best:.2f}"])
    if "tf" in http:
        tf_at4 = _at(http["tf"], 4) or http["tf"][-1]
        for backend in ("tflite-float", "tflite-int8", "v1-quant"):
            if backend in http:
                at4 = _at(http[backend], 4) or http[backend][-1]
                ratios.append(
                    [f"{backend} / tf, HTTP requests/s @{at4.concurrency} clients", f"{at4.rate / tf_at4.rate:.2f}"]
                )
    out.append(table(ratios, ["ratio", "value"]))
    if batching:
        out += [
            "",
            f"### Micro-batching (TF graph on 300x300 frames, no decoding, {args.engine_threads} threads "
            "calling at once)",
            "",
        ]
        out.append(table([[str(b), f"{ms:.1f}"] for b, ms in batching], ["batch", "ms per image"]))
    return "\n".join(out)


def _at(runs: list[Run], concurrency: int) -> Run | None:
    return next((r for r in runs if r.concurrency == concurrency), None)


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=SHARED / "images", help="folder of JPEG photos")
    parser.add_argument(
        "--ssdlite",
        type=Path,
        default=SHARED / "models" / "ssdlite_mobilenet_v2_coco.tar.gz",
        help="archive of an SSD frozen-graph model (.tar.gz)",
    )
    parser.add_argument(
        "--quant",
        type=Path,
        default=SHARED / "models" / "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip",
        help="archive of a published int8 TFLite SSD model (.zip), the v1-quant backend",
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated subset of " + ", ".join(BACKENDS)
    )
    parser.add_argument(
        "--one-core",
        default="tflite-int8",
        help="backends also served with LONE_REQUEST_THREADS=1, to compare a lone request with and without "
        "the idle cores (comma-separated LiteRT backends; empty: none)",
    )
    parser.add_argument("--requests", type=int, default=60, help="requests per measurement")
    parser.add_argument("--clients", default="1,2,4,8", help="HTTP client counts")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn WORKERS")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn THREADS")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--cpu-requests", type=int, default=40, help="requests per CPU breakdown")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: v1-quant model (also on one core), 2 photos, 4 requests, 1-2 clients",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.backends, args.requests, args.clients, args.cpu_requests = "v1-quant", 4, "1,2", 4
        args.one_core = "v1-quant"
    args.backends = [b for b in args.backends.split(",") if b]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    args.one_core = [b for b in args.one_core.split(",") if b in args.backends and b != "tf"]
    args.clients = [int(c) for c in args.clients.split(",")]
    args.image_files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if args.quick:
        args.image_files = args.image_files[:2]
    if not args.image_files:
        parser.error(f"no .jpg photos in {args.images}")
    args.load = os.getloadavg()[0]
    # What the server and the in-process engines get from ENGINE_THREADS=0 (CPU affinity ÷ WORKERS).
    args.engine_threads = Settings(workers=args.workers).effective_engine_threads
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The workers' malloc policy (gunicorn.conf.py post_fork) here too, before any thread starts, so
    # that in-process and HTTP differ by HTTP alone (two arenas cost 4-8 % at 4 clients, A-B measured).
    from core.model.budget import limit_malloc_arenas

    limit_malloc_arenas(2)
    images = [p.read_bytes() for p in args.image_files]
    bodies = [multipart(data) for data in images]
    servers: dict[str, Server] = {}
    workers: dict[str, dict[str, float]] = {}
    batching: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        models = prepare_models(args, work)
        try:
            for backend in models:  # one at a time, so each cold start has the machine
                servers[backend] = Server(backend, models[backend], work, args)
                workers[backend] = {"cold": servers[backend].wait_ready()}
            from app import build_model

            detectors = {b: build_model(replace(s, workers=args.workers)).load() for b, s in models.items()}
            raw, http = measure(detectors, servers, images, bodies, args)
            for backend, server in servers.items():
                workers[backend]["rss"], workers[backend]["hwm"] = server.memory_mb()
            cpu = {
                b: cpu_breakdown(detectors[b], servers[b], images, bodies, args.cpu_requests)
                for b in detectors
                if ":" not in b  # the one-core variant spends the same CPU
            }
        finally:
            for server in servers.values():
                server.stop()
        if "tf" in detectors and not args.quick:
            batching = batching_runs(detectors["tf"], images, args)
    text = report(args, raw, batching, http, workers, cpu)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
