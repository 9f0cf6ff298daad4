"""The float TFLite model written by ``core.optimize`` gives the TF model's detections.

Parity on every photo in ../shared/images at threshold 0.5: the same labels, each TF box matched
by a float box of the same label with IoU >= 0.9, scores within 0.05.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.conftest import IMAGES, SSDLITE_ARCHIVE, image_bytes, require
from tests.integration.test_tflite_backend import assert_serves_without_tensorflow

PHOTOS = sorted(p.name for p in IMAGES.glob("*.jpg")) if IMAGES.is_dir() else ["baby-bear.jpg"]


@pytest.fixture(scope="module")
def ssdlite_model(tmp_path_factory) -> Path:
    """The SSDLite archive from ../shared, extracted (frozen graph + SavedModel)."""
    target = tmp_path_factory.mktemp("ssdlite")
    with tarfile.open(require(SSDLITE_ARCHIVE)) as archive:
        archive.extractall(target, filter="data")
    return target / "ssdlite_mobilenet_v2_coco"


@pytest.fixture(scope="module")
def float_dir(ssdlite_model: Path, tmp_path_factory) -> Path:
    from core.optimize import convert

    target = tmp_path_factory.mktemp("optimized")
    convert(ssdlite_model, target / "ssd_float.tflite")
    return target


@pytest.fixture(scope="module")
def tf_detector(ssdlite_model: Path):
    from core import load_detector

    return load_detector(ssdlite_model, fmt="frozen_graph")


@pytest.fixture(scope="module")
def float_detector(float_dir: Path):
    from core import load_detector

    return load_detector(float_dir, backend="tflite")


def iou(a, b) -> float:
    ya, xa = max(a[0], b[0]), max(a[1], b[1])
    yb, xb = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, yb - ya) * max(0.0, xb - xa)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def unmatched(reference, candidate, min_iou: float = 0.9, max_score_gap: float = 0.05) -> list:
    """Reference detections with no candidate of the same label, IoU >= min_iou and a close score."""
    left = list(candidate)
    missing = []
    for ref in reference:
        match = next((c for c in left if c.label_id == ref.label_id and iou(c.box, ref.box) >= min_iou
                      and abs(c.score - ref.score) <= max_score_gap), None)
        if match is None:
            missing.append(ref)
        else:
            left.remove(match)
    return missing


@pytest.mark.parametrize("name", PHOTOS)
def test_float_tflite_matches_tensorflow(tf_detector, float_detector, name):
    decoded = tf_detector.decode(image_bytes(name))
    reference = tf_detector.detect(decoded, threshold=0.5)
    optimized = float_detector.detect(decoded, threshold=0.5)
    assert sorted(d.label for d in optimized) == sorted(d.label for d in reference)
    assert unmatched(reference, optimized) == []


def test_raw_outputs_agree_at_low_threshold(tf_detector, float_detector):
    """Beyond the 0.5 cut: the 20 best boxes of each agree, so NMS and box decoding are the same."""
    decoded = tf_detector.decode(image_bytes("kite.jpg"))
    reference = tf_detector.detect(decoded, threshold=0.0)[:20]
    optimized = float_detector.detect(decoded, threshold=0.0)[:30]
    assert len(unmatched(reference, optimized)) <= 2


def test_the_float_model_serves_without_tensorflow(float_dir: Path):
    assert_serves_without_tensorflow(float_dir)


def test_backend_tflite_picks_the_tflite_beside_the_graph(ssdlite_model: Path, float_dir: Path, tmp_path: Path):
    from core import make_detector

    (tmp_path / "frozen_inference_graph.pb").symlink_to(ssdlite_model / "frozen_inference_graph.pb")
    (tmp_path / "ssd_float.tflite").symlink_to(float_dir / "ssd_float.tflite")
    assert make_detector(tmp_path, backend="tflite").load().backend == "tflite"
    assert make_detector(tmp_path, backend="auto").load().backend == "tf"


def test_non_ssd_graph_is_refused(tmp_path: Path):
    import tensorflow as tf

    from core.errors import ModelLoadError
    from core.optimize import convert

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.placeholder(tf.uint8, [1, 8, 8, 3], name="image_tensor")
    (tmp_path / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ModelLoadError, match="not an SSD export"):
        convert(tmp_path)
    assert not list(tmp_path.glob("*.tflite"))
