"""The SSD-MobileNet wrapper: model-zoo SSD outputs -> detections with COCO labels.

It knows the SSD output layout and where label maps live; which runtime executes the network
is an :class:`~core.ssd.engines.base.Engine` that :mod:`core.serving.factory` chooses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.assets import COCO_LABELS
from core.errors import ModelLoadError, ModelNotReady
from core.model.detection import Detection, clip_box
from core.model.images import DecodedImage
from core.model.labels import read_label_map
from core.model.wrapper import ModelInfo, ModelWrapper
from core.ssd.engines.base import Engine, RawDetections

log = logging.getLogger(__name__)
FORMATS = ("frozen_graph", "saved_model", "tflite")


class SSDMobileNet(ModelWrapper):
    """An SSD detector over any engine. Thread-safe once loaded: it holds no per-request state."""

    def __init__(self, engine_factory: Callable[[], Engine], labels: dict[int, str], info: ModelInfo) -> None:
        super().__init__()
        self._engine_factory = engine_factory
        self._labels = labels
        self._info = info
        self._engine: Engine | None = None

    @property
    def info(self) -> ModelInfo:
        extra = dict(self._info.extra)
        if self._engine is not None:
            extra.update(backend=self._engine.backend, format=self._engine.format)
            if self._engine.input_size:
                extra["input_size"] = list(self._engine.input_size)
        return ModelInfo(
            self._info.id, self._info.name, self._info.description, self._info.source, self._info.license, extra
        )

    @property
    def labels(self) -> dict[int, str]:
        return self._labels

    @property
    def backend(self) -> str | None:
        return self._engine.backend if self._engine else None

    def _load(self) -> None:
        self._engine = self._engine_factory()
        self.input_size = self._engine.input_size or (300, 300)
        # Warm-up: the first call builds kernels and caches; do it here, not in a user's request.
        width, height = self.input_size
        self.predict(np.zeros((1, height, width, 3), dtype=np.uint8))

    def preprocess(self, image: DecodedImage) -> np.ndarray:
        return image.to_array()[np.newaxis]

    def predict(self, inputs: np.ndarray) -> RawDetections:
        if self._engine is None:  # not an assert: those vanish under python -O
            raise ModelNotReady("the model is not loaded yet: call load() first")
        return self._engine(inputs)

    def postprocess(self, outputs: RawDetections, threshold: float) -> list[Detection]:
        keep = np.flatnonzero(outputs.scores >= threshold)
        keep = keep[np.argsort(-outputs.scores[keep], kind="stable")]
        return [
            Detection(
                label_id=int(outputs.classes[i]),
                label=self._labels.get(int(outputs.classes[i]), f"class {int(outputs.classes[i])}"),
                score=float(outputs.scores[i]),
                box=clip_box(outputs.boxes[i]),
            )
            for i in keep
        ]


def find_model(path: Path, fmt: str | None = None) -> tuple[Path, str]:
    """Locate the network file in a model directory (or accept the file itself).

    Preference without ``fmt``: frozen graph (MAX's format), then SavedModel, then TFLite.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model path {path} does not exist")
    if path.is_file():
        if path.name == "saved_model.pb":
            path = path.parent
        guessed = "tflite" if path.suffix == ".tflite" else "saved_model" if path.is_dir() else "frozen_graph"
        if fmt and fmt != guessed:
            raise ModelLoadError(f"{path} is a {guessed} file, not {fmt}")
        return path, guessed
    candidates = {
        "frozen_graph": sorted(path.rglob("frozen_inference_graph.pb")),
        "saved_model": sorted(p.parent for p in path.rglob("saved_model.pb")),
        "tflite": sorted(path.rglob("*.tflite")),
    }
    for name in [fmt] if fmt else FORMATS:
        if name not in candidates:
            raise ModelLoadError(f"unknown model format {name!r}; expected one of {', '.join(FORMATS)}")
        if candidates[name]:
            return candidates[name][0], name
    raise ModelLoadError(f"no frozen_inference_graph.pb, saved_model/ or .tflite file under {path}")


def label_map_file(model_file: Path, root: Path) -> Path:
    """The label map :func:`label_map_for` reads: one shipped beside the model, else ``assets/``'s COCO map."""
    for folder in dict.fromkeys((model_file.parent, root)):  # ordered: the model's own folder first
        for name in ("labelmap.txt", "labels.txt"):
            if (folder / name).is_file():
                return folder / name
    return COCO_LABELS


def label_map_for(model_file: Path, root: Path) -> dict[int, str]:
    """A label map shipped beside the model wins; otherwise the COCO map in ``assets/``."""
    return read_label_map(label_map_file(model_file, root))
