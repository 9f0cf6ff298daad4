"""Peak memory of one gunicorn worker under the worst mix of big uploads (docs/reliability.md,
"Memory under big uploads"). From the repo root::

    nice python -m tests.load.memory_mix --max-image-pixels 12000000 --rounds 3
    nice python -m tests.load.memory_mix --max-image-pixels 40000000 --rounds 2

Starts gunicorn (WORKERS=1, THREADS=4 as in k8s/) on the test model, then ``--clients``
clients (default 4, one per request thread) each send every case of
``tests.support.hostile_images.WIDE_CASES`` at exactly MAX_IMAGE_PIXELS, small and highly
compressed, alternating ``/model/predict`` and full-resolution ``/model/annotate`` (PNG
answers), ``--rounds`` times. The worker's VmRSS is sampled every 50 ms; its VmHWM (peak) is
read at the end, and its RSS two seconds after the last answer. Extra settings pass through
``--env NAME=VALUE``. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

MIB = 1 << 20


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))


def run(server, pixels: int, clients: int, rounds: int) -> dict:
    from tests.support.hostile_images import WIDE_CASES, compressed_image

    uploads = [(case, *compressed_image(case, pixels)) for case in WIDE_CASES]
    (pid,) = server.worker_pids()
    requests.post(  # warm-up: the first inference builds the graph's kernels
        f"{server.url}/model/predict", files={"image": ("w.png", uploads[-2][1])}, timeout=300
    ).raise_for_status()
    time.sleep(1)
    rss_warm = _status_kib(pid, "VmRSS")
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM from here on
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            samples.append(_status_kib(pid, "VmRSS"))

    statuses: Counter = Counter()
    slowest = 0.0
    lock = threading.Lock()

    def client(k: int) -> None:
        nonlocal slowest
        session = requests.Session()
        for r in range(rounds):
            for i, (case, data, _) in enumerate(uploads):
                annotate = (i + k + r) % 2 == 0
                path = "/model/annotate" if annotate else "/model/predict"
                form = {"format": "png"} if annotate else {}
                t0 = time.monotonic()
                response = session.post(
                    server.url + path,
                    files={"image": (f"x.{case.split('-')[1].lower()}", data)},
                    data=form,
                    timeout=600,
                )
                with lock:
                    statuses[f"{path} {response.status_code}"] += 1
                    slowest = max(slowest, time.monotonic() - t0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    peak = _status_kib(pid, "VmHWM")
    time.sleep(2)
    stop.set()
    sampler.join(5)
    after = _status_kib(pid, "VmRSS")
    return {
        "max_image_pixels": pixels,
        "clients": clients,
        "rounds": rounds,
        "upload_bytes": {case: len(data) for case, data, _ in uploads},
        "statuses": dict(sorted(statuses.items())),
        "seconds": round(seconds, 1),
        "slowest_request_s": round(slowest, 1),
        "worker_rss_after_warmup_mib": round(rss_warm / 1024),
        "worker_peak_mib": round(max(peak, *samples, 0) / 1024),
        "worker_rss_2s_after_mib": round(after / 1024),
        "worker_restarts": int(server.worker_pids() != [pid]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-image-pixels", type=int, default=12_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], help="extra setting NAME=VALUE (repeatable)")
    parser.add_argument("--assets-dir", type=Path, help="where to install the test model (default: a temp dir)")
    args = parser.parse_args(argv)

    from config import Settings
    from core.artifacts.install import ensure_model
    from tests.conftest import model_pin
    from tests.support.server import GunicornServer, model_env

    assets = args.assets_dir or Path(tempfile.mkdtemp(prefix="memory-mix-"))
    url, sha256 = model_pin()
    settings = Settings(model_url=url, model_sha256=sha256, assets_dir=assets)
    ensure_model(settings.source, settings.models_dir)
    env = {
        **model_env(assets, url, sha256),
        "WORKERS": "1",
        "THREADS": str(args.clients),
        "MAX_IMAGE_PIXELS": str(args.max_image_pixels),
        "MAX_UPLOAD_BYTES": str(10 * MIB),
        **dict(item.split("=", 1) for item in args.env),
    }
    with GunicornServer(env, assets / "memory-mix-gunicorn.log") as server:
        server.wait_ready(timeout=300)
        report = run(server, args.max_image_pixels, args.clients, args.rounds)
    print(json.dumps({**report, "env": {k: v for k, v in env.items() if k not in ("MODEL_URL", "MODEL_SHA256")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
