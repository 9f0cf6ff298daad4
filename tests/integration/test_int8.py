"""The calibrated int8 model (``python -m core optimize MODEL_DIR --int8``, ``BACKEND=tflite-int8``).

On the real SSDLite archive: the file is int8 where it should be and float where it should be,
reproducible byte for byte, recorded and re-verified like the fetched files, close to TF on
real photos (the small CI version of ``make eval``), and replaced by the float model, said
out loud, when it fails its accuracy gate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import IMAGES, ROOT, image_bytes, model_pin, require
from tests.integration.test_optimized_parity import unmatched

pytestmark = [pytest.mark.slow]

PHOTOS = ["dog.jpg", "horses.jpg", "giraffe.jpg", "jockey.jpg", "kite.jpg", "baby-bear.jpg"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The SSDLite archive installed by the real fetcher, then ``python -m core optimize --int8``."""
    from config import Settings
    from core.artifacts.install import ensure_model
    from core.cli import main

    url, sha256 = model_pin()
    settings = Settings(model_url=url, model_sha256=sha256, assets_dir=tmp_path_factory.mktemp("assets"))
    ensure_model(settings.source, settings.models_dir, show_progress=False)
    # As a user types it in the project root: a relative path, from a directory that is not its parent.
    elsewhere = settings.assets_dir / "elsewhere"
    elsewhere.mkdir()
    cwd = Path.cwd()
    os.chdir(elsewhere)
    try:
        assert main(["optimize", os.path.join("..", "models", settings.model_name), "--int8"]) == 0
    finally:
        os.chdir(cwd)
    return replace(settings, backend="tflite-int8")


@pytest.fixture(scope="module")
def int8_file(installed) -> Path:
    (found,) = installed.model_dir.rglob("ssd_int8.tflite")
    return found


@pytest.fixture(scope="module")
def int8_detector(installed):
    from app import build_model

    return build_model(installed).load()


def test_int8_network_float_postprocess_and_raw_pixel_input(int8_file):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(int8_file), num_threads=1)
    interpreter.allocate_tensors()
    (spec,) = interpreter.get_input_details()
    assert spec["dtype"] == np.uint8 and spec["quantization"] == (1.0, 0)
    ops = interpreter._get_ops_details()
    assert [op["op_name"] for op in ops].count("TFLite_Detection_PostProcess") == 1
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = [op for op in ops if op["op_name"] == "CONV_2D"]
    weights = [tensors[op["inputs"][1]] for op in convs]
    assert all(w["dtype"] == np.int8 for w in weights)  # signed int8 weights
    assert all(len(w["quantization_parameters"]["scales"]) == w["shape"][0] for w in weights)  # per channel
    (post,) = [op for op in ops if op["op_name"] == "TFLite_Detection_PostProcess"]
    assert all(tensors[i]["dtype"] == np.float32 for i in [*post["inputs"], *post["outputs"]])
    depthwise = [op for op in ops if op["op_name"] == "DEPTHWISE_CONV_2D"]
    kept = [i for i, op in enumerate(depthwise) if tensors[op["inputs"][1]]["dtype"] == np.float32]
    assert kept == [0, 2]  # KEEP_FLOAT: the 1st and 3rd depthwise conv
    # Up to 100 detections, as the float model and the graph.
    assert tensors[post["outputs"][0]]["shape"].tolist() == [1, 100, 4]


def test_the_conversion_is_reproducible(installed, int8_file, tmp_path):
    from core.artifacts.quantize import convert_int8

    (graph,) = installed.model_dir.rglob("frozen_inference_graph.pb")
    again = convert_int8(graph, tmp_path / "again.tflite")
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(int8_file.read_bytes()).hexdigest()


def test_recorded_in_the_manifest_with_its_gate(installed, int8_file):
    from core.artifacts.manifest import read_manifest

    manifest = read_manifest(installed.model_dir)
    rel = int8_file.relative_to(installed.model_dir).as_posix()
    assert rel in manifest.derived and "sha256" in manifest.files[rel]
    verdict = manifest.checks[rel]
    assert verdict["passed"] is True, verdict
    assert verdict["matched"] >= 0.9 * verdict["reference_detections"] > 0


def test_int8_agrees_with_tensorflow(detector, int8_detector):
    """CI's small accuracy check (``make eval`` scores all 206 COCO photos): of TF's detections
    scoring >= 0.5 on six real photos, at least 90 % have an int8 one of the same label with
    IoU >= 0.75 and a score within 0.1, and at most one int8 box >= 0.5 per photo has no TF box
    (>= 0.3, same label, IoU >= 0.5)."""
    assert int8_detector.backend == "tflite-int8"
    found = missed = 0
    for name in PHOTOS:
        decoded = detector.decode(image_bytes(name))
        reference = detector.detect(decoded, threshold=0.5)
        lost = unmatched(reference, int8_detector.detect(decoded, threshold=0.3), min_iou=0.75, max_score_gap=0.1)
        found, missed = found + len(reference) - len(lost), missed + len(lost)
        extra = unmatched(
            int8_detector.detect(decoded, threshold=0.5),
            detector.detect(decoded, threshold=0.3),
            min_iou=0.5,
            max_score_gap=1.0,
        )
        assert len(extra) <= 1, (name, extra)
    assert found >= 0.9 * (found + missed), (found, missed)


def test_int8_serves_without_tensorflow(installed):
    code = (
        "import sys\n"
        "from dataclasses import replace\n"
        "from config import Settings\n"
        "from app import build_model\n"
        f"s = replace(Settings(), model_url={installed.model_url!r}, model_sha256={installed.model_sha256!r},"
        f" assets_dir=__import__('pathlib').Path({str(installed.assets_dir)!r}), backend='tflite-int8')\n"
        "d = build_model(s).load()\n"
        f"found = d.detect(open({str(require(IMAGES / 'dog.jpg'))!r}, 'rb').read(), 0.5)\n"
        "assert found, 'no detections'\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print('ok', d.backend, d.info.to_json().get('fallback'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok tflite-int8 None")


def test_a_model_failing_the_gate_falls_back_to_float(installed, int8_file, caplog):
    """A real gate failure (a stricter gate, measured on the same photos) recorded in the manifest:
    the service serves the float model and says why, in the log and in /model/metadata."""
    from app import build_model, create_app
    from core.artifacts.manifest import read_manifest, record_derived_file, write_manifest
    from core.artifacts.quantize import Gate, agreement

    root = installed.model_dir
    rel = int8_file.relative_to(root).as_posix()
    before = read_manifest(root)
    (float_file,) = root.rglob("ssd_float.tflite")
    verdict = agreement(float_file, int8_file, Gate(min_mean_iou=0.999))
    assert verdict["passed"] is False and "mean IoU" in verdict["reason"]
    try:
        record_derived_file(root, rel, check=verdict)
        with caplog.at_level("WARNING"):
            model = build_model(installed).load()
        assert model.backend == "tflite"
        assert "int8 failed the accuracy gate: mean IoU" in caplog.text
        client = create_app(installed, model=model).test_client()
        metadata = client.get("/model/metadata").get_json()
        assert metadata["backend"] == "tflite"
        assert metadata["fallback"].startswith("int8 failed the accuracy gate: mean IoU")
        assert (
            client.post("/model/predict", data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")}).status_code
            == 200
        )
    finally:
        write_manifest(root, before)


def test_a_changed_int8_file_is_refused(installed, int8_file):
    from app import build_model
    from core.errors import ModelLoadError

    original = int8_file.read_bytes()
    try:
        int8_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(ModelLoadError):
            build_model(installed)
    finally:
        int8_file.write_bytes(original)


def test_an_unlisted_int8_file_is_refused(installed, int8_file):
    from app import build_model
    from core.artifacts.manifest import read_manifest, write_manifest
    from core.errors import ModelLoadError

    root = installed.model_dir
    before = read_manifest(root)
    rel = int8_file.relative_to(root).as_posix()
    files = {k: v for k, v in before.files.items() if k != rel}
    try:
        write_manifest(root, dataclasses.replace(before, files=files, derived=[d for d in before.derived if d != rel]))
        with pytest.raises(ModelLoadError, match="not in its manifest"):
            build_model(installed)
    finally:
        write_manifest(root, before)


def test_the_engine_refuses_an_input_quantised_otherwise(int8_file, tmp_path):
    """Raw pixels written into a uint8 input at scale 0.5 would be read as other values: refused."""
    from tensorflow.lite.tools import flatbuffer_utils

    from core.errors import ModelLoadError
    from core.ssd.engines.litert import TFLiteEngine

    model = flatbuffer_utils.read_model(str(int8_file))
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].quantization.scale = np.asarray([0.5], np.float32)
    bad = tmp_path / "bad.tflite"
    flatbuffer_utils.write_model(model, str(bad))
    with pytest.raises(ModelLoadError, match="scale 0.5 / zero point 0"):
        TFLiteEngine(bad, 1)


def test_keep_float_rules_name_ops_by_position_and_refuse_what_is_absent(int8_file):
    from core.artifacts.quantize import _keep_float
    from core.errors import ModelLoadError

    flatbuffer = int8_file.read_bytes()
    (name,) = _keep_float(flatbuffer, ["DEPTHWISE_CONV_2D:2"])
    assert "expanded_conv_2/depthwise" in name
    with pytest.raises(ModelLoadError, match="matches no op: the network has 33 DEPTHWISE_CONV_2D"):
        _keep_float(flatbuffer, ["DEPTHWISE_CONV_2D:99"])
    with pytest.raises(ModelLoadError, match="has 0 MEAN"):
        _keep_float(flatbuffer, ["MEAN:0"])


def test_the_engine_split_gives_the_whole_models_outputs(int8_file):
    """The float and int8 files cut into network + NMS (two cores for a lone request) answer as
    the unsplit files do, bit for bit (see test_lone_request.py)."""
    from tests.integration.test_lone_request import assert_split_matches_whole

    for model_file in (int8_file, int8_file.with_name("ssd_float.tflite")):
        assert_split_matches_whole(model_file)
