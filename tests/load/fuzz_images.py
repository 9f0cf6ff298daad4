"""Mutation fuzzing of the image path through a running gunicorn: no input may get a 5xx, crash
or restart a worker, or stop the service from answering normally afterwards.

Long run (docs/reliability.md, "Fuzzing"), from the repo root::

    nice -n 19 python -m tests.load.fuzz_images --count 10000 --seed 14

Seeds are real photos from ../shared/images, encoded here as JPEG (baseline and progressive),
PNG, GIF, WebP, BMP and TIFF (raw, LZW, deflate, JPEG-in-TIFF); nothing third-party is stored.
Input ``i`` of seed ``s`` is a pure function of ``(s, i)``: a failure is reproduced with
``--seed s --only i`` and becomes a regression test that regenerates it (``mutated(s, i)``).
Mutations: bit flips, random bytes, truncation, inserted/deleted runs, chunk and marker
corruption (PNG chunk lengths and types, JPEG segment lengths and markers) and huge declared
sizes (PNG IHDR, JPEG SOF, GIF screen, BMP header, TIFF width/length).
``tests/load/test_fuzz_images.py`` runs a fixed-seed 250-input version in CI.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import requests
from PIL import Image

PHOTOS = ("dog.jpg", "giraffe.jpg", "baby-bear.jpg", "horses.jpg", "kite.jpg", "eagle.jpg")
#: (format, Pillow save options), the encodings every photo is turned into.
ENCODINGS: tuple[tuple[str, dict], ...] = (
    ("JPEG", {"quality": 85}),
    ("JPEG", {"quality": 75, "progressive": True}),
    ("PNG", {}),
    ("PNG", {"mode": "RGBA"}),
    ("GIF", {}),
    ("WEBP", {"quality": 70}),
    ("WEBP", {"lossless": True}),
    ("BMP", {}),
    ("TIFF", {}),
    ("TIFF", {"compression": "tiff_lzw"}),
    ("TIFF", {"compression": "tiff_adobe_deflate"}),
    ("TIFF", {"compression": "jpeg"}),
)
_PROBLEM = re.compile(r"WORKER TIMEOUT|Worker \(pid:\d+\) (was sent|exited)|Traceback|Segmentation|core dumped")


@cache
def seeds(max_side: int = 480) -> tuple[tuple[str, bytes], ...]:
    """Every photo in every encoding, scaled to at most ``max_side`` pixels a side (fast to decode)."""
    from tests.conftest import IMAGES, require

    out = []
    for name in PHOTOS:
        photo = Image.open(require(IMAGES / name))
        photo.thumbnail((max_side, max_side))
        for fmt, options in ENCODINGS:
            options = dict(options)
            mode = options.pop("mode", "RGB")
            buf = io.BytesIO()
            photo.convert(mode).save(buf, fmt, **options)
            out.append((fmt, buf.getvalue()))
    return tuple(out)


# --- mutations -----------------------------------------------------------------------------------


def _flip_bits(rng: random.Random, data: bytearray, fmt: str) -> str:
    n = rng.choice((1, 2, 4, 16, 64))
    for _ in range(n):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return f"flip {n} bits"


def _random_bytes(rng: random.Random, data: bytearray, fmt: str) -> str:
    start = rng.randrange(len(data))
    n = rng.choice((1, 4, 32, 256))
    data[start : start + n] = rng.randbytes(min(n, len(data) - start))
    return f"random {n} bytes at {start}"


def _interesting(rng: random.Random, data: bytearray, fmt: str) -> str:
    start = rng.randrange(max(1, len(data) - 4))
    value = rng.choice((0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 0x8000, 1, 0xFF))
    data[start : start + 4] = struct.pack(">I", value)
    return f"interesting value {value:#x} at {start}"


def _truncate(rng: random.Random, data: bytearray, fmt: str) -> str:
    keep = rng.randrange(1, len(data))
    del data[keep:]
    return f"truncate to {keep}"


def _splice(rng: random.Random, data: bytearray, fmt: str) -> str:
    start = rng.randrange(len(data))
    if rng.random() < 0.5:
        n = rng.randrange(1, 2048)
        del data[start : start + n]
        return f"delete {n} bytes at {start}"
    src = rng.randrange(len(data))
    piece = bytes(data[src : src + rng.randrange(1, 4096)])
    data[start:start] = piece * rng.choice((1, 2, 16))
    return f"duplicate a run of {len(piece)} bytes at {start}"


def _structure(rng: random.Random, data: bytearray, fmt: str) -> str:
    """Corrupt a chunk (PNG) or segment (JPEG) header; other formats get a header-area flip."""
    if fmt == "PNG":
        offsets = [m.start() - 4 for m in re.finditer(rb"IHDR|IDAT|IEND|PLTE|tRNS", data)]
        if offsets:
            at = rng.choice(offsets)
            if rng.random() < 0.5:
                data[at : at + 4] = struct.pack(
                    ">I", rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 20)))
                )
                return f"PNG chunk length at {at}"
            data[at + 4 : at + 8] = rng.choice((b"IDAT", b"IEND", b"IHDR", b"acTL", b"fdAT", b"zzzz"))
            return f"PNG chunk type at {at}"
    if fmt == "JPEG":
        offsets = [m.start() for m in re.finditer(rb"\xff[\xc0-\xfe]", data[: min(len(data), 1 << 16)])]
        if offsets:
            at = rng.choice(offsets)
            if rng.random() < 0.5 and at + 4 <= len(data):
                data[at + 2 : at + 4] = struct.pack(">H", rng.choice((0, 1, 2, 0xFFFF, rng.randrange(1 << 16))))
                return f"JPEG segment length at {at}"
            data[at + 1] = rng.choice((0xC0, 0xC2, 0xC4, 0xDA, 0xDB, 0xDD, 0xD9, 0xE1, 0xCF, 0xF7))
            return f"JPEG marker at {at}"
    at = rng.randrange(min(len(data), 128))
    data[at] ^= 0xFF
    return f"header byte {at}"


def _huge_size(rng: random.Random, data: bytearray, fmt: str) -> str:
    """Declare a huge (or zero) canvas in the header the format keeps it in."""
    w, h = rng.choice(((65535, 65535), (1 << 20, 1), (0, 100), (100_000, 100_000), (8000, 6000)))
    if fmt == "PNG" and len(data) > 24:
        data[16:24] = struct.pack(">II", w, h)
    elif fmt == "JPEG" and (m := re.search(rb"\xff[\xc0-\xc2]", data)):
        data[m.start() + 5 : m.start() + 9] = struct.pack(">HH", min(h, 65535), min(w, 65535))
    elif fmt == "GIF" and len(data) > 10:
        data[6:10] = struct.pack("<HH", min(w, 65535), min(h, 65535))
    elif fmt == "BMP" and len(data) > 26:
        data[18:26] = struct.pack("<ii", min(w, 2**31 - 1), -min(h, 2**31 - 1) if rng.random() < 0.5 else h)
    elif fmt == "TIFF" and len(data) > 8:
        # patch ImageWidth (256) / ImageLength (257) in the first IFD, little-endian (Pillow writes II)
        (ifd,) = struct.unpack_from("<I", data, 4)
        if ifd + 2 <= len(data):
            (entries,) = struct.unpack_from("<H", data, ifd)
            for k in range(min(entries, 64)):
                at = ifd + 2 + 12 * k
                if at + 12 > len(data):
                    break
                tag, kind = struct.unpack_from("<HH", data, at)
                if tag in (256, 257):
                    value = w if tag == 256 else h
                    if kind == 3:
                        data[at + 8 : at + 10] = struct.pack("<H", min(value, 65535))
                    else:
                        data[at + 8 : at + 12] = struct.pack("<I", value)
    elif fmt == "WEBP" and len(data) > 30:
        data[26:30] = struct.pack("<HH", min(w, 16383), min(h, 16383))  # VP8 frame size (lossy)
    return f"declare {w}x{h}"


MUTATORS = (_flip_bits, _random_bytes, _interesting, _truncate, _splice, _structure, _huge_size)


def mutated(seed: int, index: int) -> tuple[str, str, bytes]:
    """Input ``index`` of run ``seed``: (format, what was done, bytes). Deterministic."""
    rng = random.Random(seed * 1_000_003 + index)
    fmt, original = rng.choice(seeds())
    data = bytearray(original)
    done = [rng.choice(MUTATORS)(rng, data, fmt) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
    if not data:
        data = bytearray(original[:1])
    return fmt, "; ".join(done), bytes(data)


# --- the run -------------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    seed: int
    inputs: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[dict] = field(default_factory=list)
    transport_errors: list[dict] = field(default_factory=list)
    slowest_ms: float = 0.0
    slowest: dict = field(default_factory=dict)
    seconds: float = 0.0
    worker_restarts: int = 0
    log_problems: list[str] = field(default_factory=list)
    serves_afterwards: bool = False

    @property
    def passed(self) -> bool:
        return (
            self.inputs > 0
            and not self.server_errors
            and not self.transport_errors
            and self.worker_restarts == 0
            and not self.log_problems
            and self.serves_afterwards
        )

    def to_json(self) -> dict:
        out = asdict(self)
        out["statuses"] = dict(sorted(self.statuses.items()))
        out["passed"] = self.passed
        return out


def fuzz(url: str, count: int, seed: int, clients: int = 3, start: int = 0) -> FuzzReport:
    """Send inputs ``start .. start+count-1`` of ``seed`` to predict (and every fifth to annotate)."""
    report = FuzzReport(seed=seed)
    lock = threading.Lock()
    indices = iter(range(start, start + count))
    began = time.monotonic()

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return
            fmt, what, data = mutated(seed, index)
            path = "/model/annotate" if index % 5 == 0 else "/model/predict"
            case = {"index": index, "format": fmt, "mutation": what, "path": path}
            t0 = time.perf_counter()
            try:
                response = session.post(
                    url + path, files={"image": (f"fuzz.{fmt.lower()}", data)}, data={"threshold": "0.5"}, timeout=120
                )
            except requests.RequestException as exc:
                with lock:
                    report.inputs += 1
                    report.transport_errors.append({**case, "error": str(exc)[:200]})
                session = requests.Session()
                continue
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                report.inputs += 1
                report.statuses[response.status_code] += 1
                if response.status_code >= 500:
                    report.server_errors.append({**case, "status": response.status_code, "body": response.text[:200]})
                if ms > report.slowest_ms:
                    report.slowest_ms, report.slowest = round(ms, 1), {**case, "status": response.status_code}

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = round(time.monotonic() - began, 1)
    return report


def check_server(server, report: FuzzReport, pids_before: list[int], log_offset: int) -> None:
    """Fill in restarts, log problems and whether a normal photo still gets its detections."""
    from tests.conftest import IMAGES

    report.worker_restarts = len(set(pids_before) - set(server.worker_pids()))
    report.log_problems = [m.group(0) for m in _PROBLEM.finditer(server.log_text()[log_offset:])][:20]
    response = requests.post(
        f"{server.url}/model/predict",
        files={"image": ("dog.jpg", (IMAGES / "dog.jpg").read_bytes())},
        data={"threshold": "0.5"},
        timeout=60,
    )
    report.serves_afterwards = response.status_code == 200 and any(
        p["label"] == "dog" for p in response.json()["predictions"]
    )


def run(env: dict[str, str], log_path: Path, count: int, seed: int, clients: int = 3) -> FuzzReport:
    from tests.support.server import GunicornServer

    with GunicornServer(env, log_path) as server:
        server.wait_ready()
        pids = server.worker_pids()
        offset = len(server.log_text())
        report = fuzz(server.url, count, seed, clients)
        check_server(server, report, pids, offset)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="mutated inputs to send (default 10000)")
    parser.add_argument("--seed", type=int, default=14, help="run seed (default 14)")
    parser.add_argument("--clients", type=int, default=3, help="concurrent clients (default 3)")
    parser.add_argument("--only", type=int, help="write input ONLY of the seed to stdout and exit")
    parser.add_argument("--assets-dir", type=Path, help="where to install the test model (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.only is not None:
        fmt, what, data = mutated(args.seed, args.only)
        print(f"{fmt}: {what}", file=sys.stderr)
        sys.stdout.buffer.write(data)
        return 0

    from config import Settings
    from core.artifacts.install import ensure_model
    from tests.conftest import model_pin
    from tests.support.server import model_env

    assets = args.assets_dir or Path(tempfile.mkdtemp(prefix="fuzz-assets-"))
    url, sha256 = model_pin()
    settings = Settings(model_url=url, model_sha256=sha256, assets_dir=assets)
    ensure_model(settings.source, settings.models_dir)
    log = assets / "fuzz-gunicorn.log"
    report = run(model_env(assets, url, sha256), log, args.count, args.seed, args.clients)
    print(json.dumps({**report.to_json(), "gunicorn_log": str(log)}, indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
