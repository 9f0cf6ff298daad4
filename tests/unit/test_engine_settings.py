"""Engine threading comes from configuration, so WORKERS x engine threads fits the cores."""
from __future__ import annotations

import config
from config import Settings


def test_engine_threads_default_splits_the_cores_between_workers(monkeypatch):
    monkeypatch.setattr(config.os, "cpu_count", lambda: 8)
    assert Settings.from_env({"WORKERS": "2"}).effective_engine_threads == 4
    assert Settings.from_env({"WORKERS": "16"}).effective_engine_threads == 1
    assert Settings.from_env({"WORKERS": "2", "ENGINE_THREADS": "3"}).effective_engine_threads == 3
