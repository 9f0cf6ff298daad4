"""Object-detection framework: decode images, run a model wrapper, return typed detections.

The Python API for running models without HTTP::

    from core import load_detector
    detector = load_detector("assets/models/ssd_mobilenet_v1")
    detections = detector.detect(image_bytes_or_pil_image, threshold=0.5)
    [d.to_json() for d in detections]  # the same objects /model/predict returns
"""
from core.detection import Detection
from core.errors import DetectorError, ImageTooLarge, InvalidInput, ModelLoadError, ModelNotReady
from core.images import DecodedImage, decode_image
from core.model import ModelInfo, ModelWrapper
from core.ssd_mobilenet import load_detector, make_detector

__all__ = [
    "DecodedImage", "Detection", "DetectorError", "ImageTooLarge", "InvalidInput", "ModelInfo",
    "ModelLoadError", "ModelNotReady", "ModelWrapper", "decode_image", "load_detector", "make_detector",
]
