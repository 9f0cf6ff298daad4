"""ModelHolder: its states, its on_ready hook and its bounded wait for a model that is still loading.

A tiny wrapper whose load the test controls stands in for a model (no TensorFlow needed)."""

from __future__ import annotations

import threading

import pytest

from core.errors import ModelNotReady
from core.model.wrapper import ModelInfo, ModelWrapper
from core.serving.holder import ModelHolder


class GatedModel(ModelWrapper):
    """Its load blocks until the test opens the gate, then succeeds or fails."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.fail = fail

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("gated", "Gated", "test model", "tests", "MIT")

    @property
    def labels(self) -> dict[int, str]:
        return {1: "thing"}

    def _load(self) -> None:
        assert self.gate.wait(30), "the test never opened the gate"
        if self.fail:
            raise RuntimeError("weights are corrupt")

    def preprocess(self, image):
        return image

    def predict(self, inputs):
        return inputs

    def postprocess(self, outputs, threshold):
        return []


def test_loading_then_ready():
    model = GatedModel()
    holder = ModelHolder(model).start()
    assert holder.state == "loading" and not holder.ready
    with pytest.raises(ModelNotReady, match="still loading"):
        holder.get()
    assert holder.model is model  # labels/metadata are served while loading
    model.gate.set()
    assert holder.wait(10) and holder.get() is model and holder.load_seconds is not None


def test_failed_load_is_reported_not_raised():
    model = GatedModel(fail=True)
    model.gate.set()
    holder = ModelHolder(model).start(background=False)
    assert holder.state == "failed" and "corrupt" in holder.error
    with pytest.raises(ModelNotReady, match="failed to load: weights are corrupt"):
        holder.get()


def test_on_ready_runs_once_the_model_loads() -> None:
    calls: list[ModelWrapper] = []
    model = GatedModel()
    holder = ModelHolder(model, on_ready=calls.append).start(background=True)
    assert calls == []
    model.gate.set()
    assert holder.wait(30)
    assert calls == [model]


def test_on_ready_runs_at_once_for_a_loaded_model() -> None:
    calls: list[ModelWrapper] = []
    model = GatedModel()
    model.gate.set()
    model.load()
    ModelHolder(model, on_ready=calls.append)
    assert calls == [model]


def test_a_failing_hook_does_not_make_the_model_unusable() -> None:
    def broken(_model):
        raise RuntimeError("metrics backend down")

    model = GatedModel()
    model.gate.set()
    holder = ModelHolder(model, on_ready=broken).start(background=False)
    assert holder.ready and holder.get() is model


def test_without_a_wait_a_loading_model_is_refused_at_once() -> None:
    model = GatedModel()
    holder = ModelHolder(model).start(background=True)
    with pytest.raises(ModelNotReady, match="still loading"):
        holder.get()
    model.gate.set()
    holder.wait(30)


def test_get_waits_for_the_load_to_finish() -> None:
    model = GatedModel()
    holder = ModelHolder(model, wait_seconds=60).start(background=True)
    got: list[object] = []
    caller = threading.Thread(target=lambda: got.append(holder.get()))
    caller.start()
    model.gate.set()  # the caller is blocked in get() or about to be: either way it must end with the model
    caller.join(60)
    assert got == [model]


def test_get_stops_waiting_when_the_load_fails() -> None:
    model = GatedModel(fail=True)
    holder = ModelHolder(model, wait_seconds=600).start(background=True)
    errors: list[Exception] = []

    def call() -> None:
        try:
            holder.get()
        except ModelNotReady as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    model.gate.set()
    caller.join(60)
    assert not caller.is_alive()  # it stopped waiting when the load failed, long before the 600 s
    assert len(errors) == 1 and "weights are corrupt" in str(errors[0])


def test_gunicorns_master_does_not_import_prometheus_client():
    """gunicorn.conf.py imports config in the master before on_starting sets PROMETHEUS_MULTIPROC_DIR,
    and prometheus-client picks memory or that directory once, on import: imported there, every
    worker would count in its own memory and /metrics would be empty."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = "import config, sys; print('prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
