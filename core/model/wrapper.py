"""The model interface every wrapper implements: load -> preprocess -> predict -> postprocess.

Modelled on KServe's ``Model``: the HTTP layer, the command line and the Python API only talk
to this class, so a new model family is one subclass. Nothing here knows about TensorFlow,
SSD or COCO.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from core.errors import InvalidInput, ModelNotReady
from core.metrics import inference_seconds
from core.model.detection import Detection
from core.model.images import DEFAULT_MAX_PIXELS, DecodedImage, decode_image, to_rgb
from core.model.structure import DEFAULT_MAX_JPEG_SCANS

ImageInput = bytes | Image.Image | DecodedImage
#: The score a detection needs when the caller gives no threshold: MAX's default, and the one of
#: every interface (``POST /model/predict``'s ``DEFAULT_THRESHOLD`` setting, the command line, ``detect``).
DEFAULT_THRESHOLD = 0.7


@dataclass(frozen=True)
class ModelInfo:
    """What ``/model/metadata`` reports. Extra keys go to ``extra`` (version, backend, input size)."""

    id: str
    name: str
    description: str
    source: str
    license: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "type": "Object Detection",
            "source": self.source,
            "license": self.license,
            **self.extra,
        }


class ModelWrapper(ABC):
    """A detector. Subclasses implement the four steps; callers use :meth:`detect`.

    ``ready`` turns true only after :meth:`load` succeeded, so health probes can read it.
    Instances are shared by request threads: subclasses must not keep per-request state.
    """

    #: Smallest (width, height) the model needs; lets JPEG decoding skip detail it would discard.
    input_size: tuple[int, int] | None = None

    def __init__(self) -> None:
        self.ready = False
        self._load_lock = threading.Lock()

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Metadata for ``/model/metadata``."""

    @property
    @abstractmethod
    def labels(self) -> dict[int, str]:
        """Every class id the model can emit, with its name."""

    @abstractmethod
    def _load(self) -> None:
        """Load weights and build whatever is reused across requests."""

    @abstractmethod
    def preprocess(self, image: DecodedImage) -> Any:
        """Turn an upright RGB image into the model's input."""

    @abstractmethod
    def predict(self, inputs: Any) -> Any:
        """Run the model. Must be safe to call from several threads at once."""

    @abstractmethod
    def postprocess(self, outputs: Any, threshold: float) -> list[Detection]:
        """Turn raw outputs into detections at or above ``threshold``, best first."""

    def load(self) -> ModelWrapper:
        """Load once; later calls return at once. Returns ``self`` for chaining."""
        with self._load_lock:
            if not self.ready:
                self._load()
                self.ready = True
        return self

    def decode(
        self, image: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS, max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS
    ) -> DecodedImage:
        """Accept bytes, a PIL image or an already decoded image, so one decode can feed several models."""
        if isinstance(image, DecodedImage):
            return image
        if isinstance(image, Image.Image):
            if image.width * image.height > max_pixels:
                raise InvalidInput(f"image has more than {max_pixels} pixels")
            return DecodedImage(image=to_rgb(image), format=image.format or "PIL", original_size=image.size)
        if isinstance(image, (bytes, bytearray, memoryview)):
            return decode_image(
                bytes(image), max_pixels=max_pixels, min_size=self.input_size, max_jpeg_scans=max_jpeg_scans
            )
        raise TypeError(f"expected bytes, a PIL image or a DecodedImage, got {type(image).__name__}")

    def detect(
        self, image: ImageInput, threshold: float = DEFAULT_THRESHOLD, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> list[Detection]:
        """The whole chain: decode (if needed) -> preprocess -> predict -> postprocess."""
        if not self.ready:
            raise ModelNotReady("the model is not loaded yet")
        if not 0.0 <= threshold <= 1.0:  # also false for NaN
            raise InvalidInput(f"threshold must be a number in [0, 1], got {threshold!r}")
        decoded = self.decode(image, max_pixels)
        with inference_seconds().time():
            return self.postprocess(self.predict(self.preprocess(decoded)), threshold)

    def predict_json(
        self, image: ImageInput, threshold: float = DEFAULT_THRESHOLD, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> list[dict[str, Any]]:
        """Predictions exactly as ``/model/predict`` returns them."""
        return [d.to_json() for d in self.detect(image, threshold, max_pixels)]
