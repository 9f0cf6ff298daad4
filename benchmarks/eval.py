"""Accuracy gate: COCO AP of every backend, scored over HTTP against the real gunicorn service.

    python benchmarks/eval.py                  # make eval: tf, tflite (float), tflite-int8 on ../shared/coco

The SSDLite archive is installed through the real fetcher into a temporary assets dir and
converted with ``python -m core optimize MODEL_DIR --int8`` (float + calibrated int8, as the
Docker build does). Then, one backend at a time, gunicorn is started with ``BACKEND=<backend>``
and every photo of ``val2017-206`` (``file_name`` of instances.json) is POSTed to ``/model/predict`` at threshold 0 (every
detection the model returns: TF's 100, the TFLite models' list down to 0.01); the normalised
boxes come back, are clipped and turned into COCO results. pycocotools scores them (bbox AP and
AP50) on all 206 photos and on the last 106 by file name (the research's held-out split; the
int8 model is calibrated on the shipped CC0 photos, never on COCO, so all 206 are unseen).

Gate: the int8 model's AP and AP50 each within 0.01 of TF's on all 206 photos (exit 1 if not).
It also reports the int8 model's own verdict that the conversion recorded in the manifest.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import bench  # benchmarks/bench.py: the gunicorn Server and the verified install

ROOT, SHARED = bench.ROOT, bench.SHARED
BACKENDS = ("tf", "tflite", "tflite-int8")
GATE = 0.01


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="threshold"\r\n\r\n0\r\n--{boundary}--\r\n'
    return head + data + tail.encode(), f"multipart/form-data; boundary={boundary}"


def detections(server: bench.Server, images: list[dict], folder: Path, clients: int) -> tuple[list[dict], dict]:
    """COCO results for ``images`` from the service, and its /model/metadata."""
    local = threading.local()

    def post(image: dict) -> list[dict]:
        conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        local.conn = conn
        body, content_type = multipart((folder / image["file_name"]).read_bytes(), image["file_name"])
        conn.request("POST", "/model/predict", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        payload = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{image['file_name']}: HTTP {response.status} {payload}")
        w, h = image["width"], image["height"]
        out = []
        for p in payload["predictions"]:
            ymin, xmin, ymax, xmax = (min(1.0, max(0.0, float(v))) for v in p["detection_box"])
            out.append(
                {
                    "image_id": image["id"],
                    "category_id": int(p["label_id"]),
                    "bbox": [xmin * w, ymin * h, (xmax - xmin) * w, (ymax - ymin) * h],
                    "score": float(p["probability"]),
                }
            )
        return out

    with ThreadPoolExecutor(clients) as pool:
        results = [r for batch in pool.map(post, images) for r in batch]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/model/metadata")
    return results, json.loads(conn.getresponse().read())


def score(annotations: Path, results: list[dict], image_ids: list[int]) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
        found = truth.loadRes(results) if results else COCO()
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.params.imgIds = sorted(image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coco", type=Path, default=SHARED / "coco" / "val2017-206", help="images/ + instances.json")
    parser.add_argument("--ssdlite", type=Path, default=SHARED / "models" / "ssdlite_mobilenet_v2_coco.tar.gz")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    args.workers, args.threads = 1, 4  # what bench.Server reads
    backends = [b for b in args.backends.split(",") if b]
    annotations = args.coco / "instances.json"
    images = sorted(json.loads(annotations.read_text())["images"], key=lambda im: im["file_name"])
    held_out = [im["id"] for im in images[100:]]
    rows, scores, notes = [], {}, []
    with tempfile.TemporaryDirectory(prefix="eval-") as tmp:
        work = Path(tmp)
        settings = bench.install(args.ssdlite, work / "assets")
        if any(b.startswith("tflite") for b in backends):
            print(f"converting {settings.model_dir} (python -m core optimize --int8)", file=sys.stderr, flush=True)
            subprocess.run(
                [sys.executable, "-m", "core", "optimize", str(settings.model_dir), "--int8"], cwd=ROOT, check=True
            )
            manifest = json.loads((settings.model_dir / ".manifest.json").read_text())
            for rel, verdict in manifest.get("checks", {}).items():
                notes.append(f"conversion gate for {rel}: {json.dumps(verdict, sort_keys=True)}")
        for backend in backends:
            server = bench.Server(backend, replace(settings, backend=backend), work, args)
            try:
                server.wait_ready(timeout=300)
                print(f"scoring {backend} over HTTP on {len(images)} photos", file=sys.stderr, flush=True)
                results, metadata = detections(server, images, args.coco, args.clients)
            finally:
                server.stop()
            served = metadata.get("backend")
            if served != backend:
                notes.append(f"BACKEND={backend} served {served}: {metadata.get('fallback')}")
            all_ap, all_ap50 = score(annotations, results, [im["id"] for im in images])
            held_ap, held_ap50 = score(annotations, results, held_out)
            scores[backend] = (all_ap, all_ap50)
            rows.append(
                [backend, served or "?", f"{all_ap:.4f}", f"{all_ap50:.4f}", f"{held_ap:.4f}", f"{held_ap50:.4f}"]
            )
    verdict = "not measured (needs tf and tflite-int8)"
    passed = True
    if "tf" in scores and "tflite-int8" in scores:
        (tf_ap, tf_ap50), (q_ap, q_ap50) = scores["tf"], scores["tflite-int8"]
        passed = q_ap >= tf_ap - GATE and q_ap50 >= tf_ap50 - GATE
        verdict = (
            f"{'PASS' if passed else 'FAIL'}: int8 AP {q_ap:.4f} vs TF {tf_ap:.4f} - {GATE} = {tf_ap - GATE:.4f}; "
            f"AP50 {q_ap50:.4f} vs {tf_ap50 - GATE:.4f} (all 206 photos)"
        )
    lines = [
        f"## Accuracy {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"COCO val2017 subset {args.coco} ({len(images)} photos, pycocotools bbox), scored over HTTP "
        f"(gunicorn, POST /model/predict, threshold 0); model {args.ssdlite.name}; "
        f"load average at start {os.getloadavg()[0]:.1f}.",
        "",
        bench.table(rows, ["BACKEND", "served", "AP (206)", "AP50 (206)", "AP (last 106)", "AP50 (last 106)"]),
        "",
        f"Gate (int8 within {GATE} of TF in AP and AP50): {verdict}",
        *(f"- {note}" for note in notes),
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
