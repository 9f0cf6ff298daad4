"""The TFLite backend serves the official int8 SSD-MobileNet v1 through the real API, without TensorFlow."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IMAGES, QUANT_ARCHIVE, ROOT, image_bytes, require
from tests.support.models import assert_concurrent_answers_match_serial, published_int8


@pytest.fixture(scope="module")
def quant_dir(tmp_path_factory) -> Path:
    """The quantized model archive extracted as shipped: detect.tflite + labelmap.txt."""
    return published_int8(require(QUANT_ARCHIVE), tmp_path_factory.mktemp("quant")).parent


@pytest.fixture(scope="module")
def quant_detector(quant_dir: Path):
    from core import load_detector

    return load_detector(quant_dir, engine_threads=2)


@pytest.fixture()
def quant_client(settings, quant_detector):
    from app import create_app

    return create_app(settings, model=quant_detector).test_client()


def test_auto_backend_for_a_tflite_dir_is_tflite(quant_detector):
    assert quant_detector.backend == "tflite"
    assert quant_detector.input_size == (300, 300)


def test_predict_finds_the_person(quant_client):
    data = {"image": (io.BytesIO(image_bytes("baby-bear.jpg")), "baby-bear.jpg"), "threshold": "0.5"}
    response = quant_client.post("/model/predict", data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    predictions = response.get_json()["predictions"]
    people = [p for p in predictions if p["label"] == "person"]
    assert people and people[0]["label_id"] == "1"
    assert all(0.0 <= v <= 1.0 for p in predictions for v in p["detection_box"])
    assert [p["probability"] for p in predictions] == sorted((p["probability"] for p in predictions), reverse=True)


def test_labels_are_the_coco_map(quant_client):
    from core.model.labels import read_label_map
    from core.ssd.detector import COCO_LABELS

    body = quant_client.get("/model/labels").get_json()
    assert {int(item["id"]): item["name"] for item in body["labels"]} == read_label_map(COCO_LABELS)
    assert body["count"] == 80


def test_metadata_names_the_backend(quant_client):
    body = quant_client.get("/model/metadata").get_json()
    assert (body["backend"], body["format"], body["input_size"]) == ("tflite", "tflite", [300, 300])


def test_concurrent_requests_match_sequential_ones(quant_detector):
    """Interpreters are not thread-safe; the pool must keep concurrent results exact."""
    photos = {name: image_bytes(name) for name in ("baby-bear.jpg", "dog.jpg", "giraffe.jpg", "jockey.jpg")}
    assert_concurrent_answers_match_serial(quant_detector, photos)


def test_resizes_any_input_size(quant_detector):
    import numpy as np

    out = quant_detector.predict(np.zeros((1, 123, 457, 3), dtype=np.uint8))
    assert out.boxes.shape[1:] == (4,) and out.scores.shape == out.classes.shape


def assert_serves_without_tensorflow(model_dir: Path) -> None:
    """In a fresh interpreter: load the model, detect on a photo, import the app; TF stays out."""
    code = (
        "import sys\n"
        "from core import load_detector\n"
        f"d = load_detector({str(model_dir)!r}, backend='tflite')\n"
        f"found = d.detect(open({str(require(IMAGES / 'dog.jpg'))!r}, 'rb').read(), 0.5)\n"
        "import app\n"
        "assert found, 'no detections'\n"
        "assert 'tensorflow' not in sys.modules, sorted(m for m in sys.modules if m.startswith('tensorflow'))\n"
        "print('ok', d.backend)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok tflite")
    assert "XNNPACK" not in result.stderr, result.stderr  # LiteRT's start-up notice stays off stderr


def test_a_tflite_worker_never_imports_tensorflow(quant_dir: Path):
    assert_serves_without_tensorflow(quant_dir)
