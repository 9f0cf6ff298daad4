"""Object-detection framework: decode images, run a model wrapper, return typed detections.

The Python API for running models without HTTP::

    from core import load_detector
    detector = load_detector("ssd_mobilenet_v1")        # a catalog name, fetched and verified on first use
    detector = load_detector("path/to/model_dir")       # or a model directory or file of your own
    detections = detector.detect(image_bytes_or_pil_image, threshold=0.5)
    [d.to_json() for d in detections]  # the same objects /model/predict returns

Subpackages, by concern: ``model`` (the interface every detector implements), ``ssd`` (the SSD
detector and its engines), ``artifacts`` (the verified supply chain of model files),
``serving`` (building and loading detectors) and ``cli`` (``python -m core``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.assets import ASSETS_DIR
from core.errors import DetectorError, ImageTooLarge, InvalidInput, ModelLoadError, ModelNotReady
from core.model.detection import Detection
from core.model.images import DecodedImage, decode_image
from core.model.wrapper import DEFAULT_THRESHOLD, ModelInfo, ModelWrapper
from core.serving.factory import detector, detector_at


def load_detector(name_or_path: str | Path, *, assets_dir: Path | None = None, **options: Any) -> ModelWrapper:
    """A detector, loaded and ready to use.

    ``name_or_path`` is a model directory or file (anything that exists or contains a ``/``), or
    the name of a catalog model or of a model installed under ``<assets_dir>/models/``; a catalog
    model is fetched and verified on first use. ``options``: ``backend``, ``engine_threads`` and ``lone_threads``.
    """
    if is_path(name_or_path):
        return detector_at(name_or_path, **options).load()
    return detector(str(name_or_path), (assets_dir or ASSETS_DIR) / "models", fetch=True, **options).load()


def is_path(name_or_path: str | Path) -> bool:
    """Anything that exists or contains a path separator is a path; anything else a model name."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or os.sep in text or "/" in text or Path(text).exists()


__all__ = [
    "DEFAULT_THRESHOLD",
    "DecodedImage",
    "Detection",
    "DetectorError",
    "ImageTooLarge",
    "InvalidInput",
    "ModelInfo",
    "ModelLoadError",
    "ModelNotReady",
    "ModelWrapper",
    "decode_image",
    "detector",
    "detector_at",
    "load_detector",
]
