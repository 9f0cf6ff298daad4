"""Installed models: converted as `make run` does, or in states the service must refuse."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def tampered_copy(model_dir: Path, assets_dir: Path) -> Path:
    """Copy an installed ``model_dir`` into ``assets_dir/models/`` and flip one byte of its graph.

    The copy keeps its manifest, so it looks installed and verified until its files are re-hashed.
    Returns the copy's directory.
    """
    copy = assets_dir / "models" / model_dir.name
    shutil.copytree(model_dir, copy)
    graph = next(copy.rglob("frozen_inference_graph.pb"))
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    return copy


def convert_for_backend(model_dir: Path, backend: str) -> None:
    """Write the ``.tflite`` files ``BACKEND=tflite``/``tflite-int8`` serve, if missing (as ``make run``)."""
    graph = any(model_dir.rglob("frozen_inference_graph.pb"))
    if backend == "tflite-int8" and graph and not any(model_dir.rglob("ssd_int8.tflite")):
        command = [sys.executable, "-m", "core", "optimize", str(model_dir), "--int8"]
    elif backend == "tflite" and graph and not any(model_dir.rglob("*.tflite")):
        command = [sys.executable, "-m", "core", "optimize", str(model_dir)]
    else:
        return
    print(f"converting {model_dir} for BACKEND={backend}: {' '.join(command[1:])}", file=sys.stderr)
    subprocess.run(command, check=True, stdout=sys.stderr)


def published_int8(archive: Path, target: Path) -> Path:
    """TF's published int8 SSD zip extracted as shipped into ``target``: its ``detect.tflite``."""
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(target)
    return target / "detect.tflite"


def assert_concurrent_answers_match_serial(detector, photos: dict[str, bytes], threshold: float = 0.3) -> None:
    """Each photo answered one at a time, then all of them three times over from 4 threads: same answers."""
    serial = {name: detector.predict_json(data, threshold) for name, data in photos.items()}
    names = list(photos) * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda name: detector.predict_json(photos[name], threshold), names))
    assert together == [serial[name] for name in names]
