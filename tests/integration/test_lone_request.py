"""A lone request's network uses the worker's idle cores; the NMS always runs on one.

The engine cuts each ``.tflite`` in two in memory (network, then ``TFLite_Detection_PostProcess``)
so that it can. Checked here on TF's published int8 SSD MobileNet v1 (the float and calibrated
int8 SSDLite files get the same checks in ``test_int8.py``): the halves give the whole model's
outputs bit for bit on one core and on two, a lone request takes the two-core runner, and
concurrent ones never do.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import IMAGES, QUANT_ARCHIVE, image_bytes, require
from tests.support.litert import engine_outputs, whole_model_outputs
from tests.support.models import assert_concurrent_answers_match_serial, published_int8

PHOTOS = ["dog.jpg", "horses.jpg", "giraffe.jpg", "jockey.jpg", "kite.jpg", "baby-bear.jpg", "person.jpg"]


@pytest.fixture(scope="module")
def quant_file(tmp_path_factory) -> Path:
    return published_int8(require(QUANT_ARCHIVE), tmp_path_factory.mktemp("quant"))


def frames(size: tuple[int, int]) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(IMAGES / name).convert("RGB").resize(size)) for name in PHOTOS]


def assert_split_matches_whole(model_file: Path) -> None:
    """Both runners of an engine (one core, two cores) give the unsplit model's outputs exactly."""
    from core.ssd.engines.litert import TFLiteEngine

    engine = TFLiteEngine(model_file, engine_threads=1, lone_threads=2)
    photos = frames(engine.input_size)
    expected = whole_model_outputs(model_file, photos)
    for lone in (False, True):
        for got, want in zip(engine_outputs(engine, photos, lone), expected, strict=True):
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)


def test_split_gives_the_whole_models_outputs(quant_file):
    assert_split_matches_whole(quant_file)


def test_a_lone_request_uses_the_lone_runner_and_overlapping_ones_never(quant_file):
    from core.ssd.engines.litert import QUIET_SECONDS, TFLiteEngine

    engine = TFLiteEngine(quant_file, engine_threads=2, lone_threads=2)
    assert engine.lone_built.wait(60)
    lone = engine._lone
    assert lone is not None
    seen: list[int] = []  # inferences running (this one included) each time the lone runner ran

    def spy(frame):
        seen.append(engine._running)
        return lone(frame)

    engine._lone = spy  # type: ignore[assignment]
    image = frames(engine.input_size)[0][np.newaxis]
    engine(image)
    assert seen == [1], "a request alone in the engine should take the lone-request runner"
    engine._running += 1  # another inference is running: the next request must stay on one core
    try:
        engine(image)
    finally:
        engine._running -= 1
    assert seen == [1]
    engine(image)  # alone again, but right after requests overlapped: a gap in a busy stretch
    assert seen == [1], "a moment alone between overlapping requests is not a lone request"
    engine._overlapped_at -= QUIET_SECONDS  # as if that was a while ago
    engine(image)
    assert seen == [1, 1]
    assert engine._running == 0 and engine._idle.qsize() == 2, "every runner is back, nothing counted twice"


def test_no_lone_runner_when_one_core_is_asked_for(quant_file):
    from core.ssd.engines.litert import TFLiteEngine

    for engine in (TFLiteEngine(quant_file, engine_threads=2, lone_threads=1), TFLiteEngine(quant_file, 1)):
        assert engine.lone_built.is_set() and engine._lone is None


def test_a_model_that_cannot_be_cut_still_serves_on_one_core(quant_file, monkeypatch, caplog):
    """The lone-request runner is a speed-up: when it cannot be built, the pool serves as before."""
    import core.ssd.engines.litert as litert
    from core.errors import ModelLoadError

    def refuse(model, name):
        raise ModelLoadError(f"{name}: its TFLite_Detection_PostProcess op is not the model's last step")

    monkeypatch.setattr(litert, "split_postprocess", refuse)
    with caplog.at_level("WARNING", logger="core.ssd.engines.litert"):
        engine = litert.TFLiteEngine(quant_file, engine_threads=2, lone_threads=2)
        assert engine.lone_built.wait(60)
    assert engine._lone is None
    assert "a lone request stays on one core: detect.tflite: its TFLite_Detection_PostProcess op" in caplog.text
    expected = whole_model_outputs(quant_file, frames(engine.input_size)[:1])[0]
    got = engine(frames(engine.input_size)[0][np.newaxis])
    np.testing.assert_array_equal(got.scores, expected[2][0, : int(expected[3][0])])


def test_answers_are_the_same_whoever_runs_them(quant_file):
    """Concurrent requests (pooled runners, single-threaded) and lone ones (two cores: the resize in
    bands, the network on two threads, the NMS apart) answer alike, on full-size photos."""
    from core import load_detector

    detector = load_detector(quant_file.parent, engine_threads=2, lone_threads=2)
    assert detector._engine.lone_built.wait(60) and detector._engine._lone is not None
    photos = {name: image_bytes(name) for name in ("baby-bear.jpg", "dog.jpg", "giraffe.jpg", "jockey.jpg")}
    assert_concurrent_answers_match_serial(detector, photos)  # serial answers come from the lone runner


def test_a_model_without_the_postprocess_op_is_refused_with_its_name(quant_file, tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils

    from core.errors import ModelLoadError
    from core.ssd.engines.litert import TFLiteEngine

    model = flatbuffer_utils.read_model(str(quant_file))
    graph = model.subgraphs[0]
    graph.outputs = list(graph.operators[-1].inputs[:2])
    graph.operators = graph.operators[:-1]
    cut = tmp_path / "network-only.tflite"
    flatbuffer_utils.write_model(model, str(cut))
    with pytest.raises(ModelLoadError, match="not an SSD detection model: it has no TFLite_Detection_PostProcess op"):
        TFLiteEngine(cut, 1)


def test_a_helper_thread_slow_to_let_go_does_not_fail_the_request(quant_file, monkeypatch):
    """A resize helper keeps its arguments until its work item is dropped, a moment after its band is
    done; if it held the interpreter's input then, LiteRT refused to run ("at least 1 reference to
    internal data"). A helper descheduled at that moment is simulated by a 10 ms pause there."""
    import concurrent.futures.thread as executor_thread

    from core.ssd.engines.litert import TFLiteEngine

    engine = TFLiteEngine(quant_file, engine_threads=1, lone_threads=2)
    assert engine.lone_built.wait(60) and engine._lone is not None
    run = executor_thread._WorkItem.run

    def slow_to_let_go(self):
        run(self)
        time.sleep(0.01)

    monkeypatch.setattr(executor_thread._WorkItem, "run", slow_to_let_go)
    photo = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for _ in range(3):
        engine._lone(photo)
