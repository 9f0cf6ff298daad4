"""ModelHolder states, with a tiny wrapper whose load we control (no TensorFlow needed)."""
import threading

import pytest

from core.errors import ModelNotReady
from core.model import ModelInfo, ModelWrapper
from core.serving import ModelHolder


class Gated(ModelWrapper):
    """A wrapper whose load waits on an event, to observe the loading state."""

    def __init__(self, fail: bool = False):
        super().__init__()
        self.gate, self.fail = threading.Event(), fail

    info = ModelInfo("gated", "Gated", "test wrapper", "tests", "none")
    labels = {1: "thing"}

    def _load(self):
        self.gate.wait(10)
        if self.fail:
            raise RuntimeError("weights are corrupt")

    def preprocess(self, image):
        return image

    def predict(self, inputs):
        return inputs

    def postprocess(self, outputs, threshold):
        return []


def test_loading_then_ready():
    model = Gated()
    holder = ModelHolder(model).start()
    assert holder.state == "loading" and not holder.ready
    with pytest.raises(ModelNotReady, match="still loading"):
        holder.get()
    assert holder.model is model  # labels/metadata are served while loading
    model.gate.set()
    assert holder.wait(10) and holder.get() is model and holder.load_seconds is not None


def test_failed_load_is_reported_not_raised():
    model = Gated(fail=True)
    model.gate.set()
    holder = ModelHolder(model).start(background=False)
    assert holder.state == "failed" and "corrupt" in holder.error
    with pytest.raises(ModelNotReady, match="failed to load: weights are corrupt"):
        holder.get()
