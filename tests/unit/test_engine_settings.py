"""Engine threading comes from configuration, so WORKERS x engine threads fits the cores."""

from __future__ import annotations

import os

import config
from config import Settings


def test_engine_threads_default_splits_the_cores_between_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert Settings.from_env({"WORKERS": "2"}).effective_engine_threads == 4
    assert Settings.from_env({"WORKERS": "16"}).effective_engine_threads == 1
    assert Settings.from_env({"WORKERS": "2", "ENGINE_THREADS": "3"}).effective_engine_threads == 3


def test_usable_cpus_follows_the_affinity_mask_not_the_host(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert config.usable_cpus() == 2


def test_tf_backend_without_tensorflow_says_what_to_do(monkeypatch, tmp_path):
    """In the image built with BACKEND=tflite an override to tf fails with a clear load error."""
    import sys

    import pytest

    from core.errors import ModelLoadError
    from core.ssd.engines.tensorflow import TensorFlowEngine

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now raises ImportError
    with pytest.raises(ModelLoadError, match="needs TensorFlow.*set BACKEND=tflite"):
        TensorFlowEngine(tmp_path / "frozen_inference_graph.pb", "frozen_graph")
