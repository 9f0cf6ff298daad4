"""Installed models in states the service must refuse."""

from __future__ import annotations

import shutil
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
