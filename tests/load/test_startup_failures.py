"""A missing or corrupt model must never give a server that answers 500: it exits, or it stays not-ready."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import requests

from config import Settings
from tests.conftest import SSDLITE_ARCHIVE, SSDLITE_SHA256
from tests.support.server import GunicornServer, model_env


def test_missing_model_exits_non_zero_with_one_clear_error_line(tmp_path: Path) -> None:
    env = model_env(tmp_path / "empty-assets", SSDLITE_ARCHIVE.as_uri(), SSDLITE_SHA256)
    expected_dir = Settings.from_env(env).model_dir
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    try:
        code = server.wait_exit(timeout=120)
    except subprocess.TimeoutExpired:
        server.stop()
        raise AssertionError(f"gunicorn kept running without a model:\n{server.log_text()[-3000:]}") from None
    log = server.log_text()
    assert code != 0
    clear = [line for line in log.splitlines() if " ERROR app: cannot start:" in line]
    assert len(clear) == 1, log
    assert str(expected_dir) in clear[0] and "python -m core.artifacts fetch" in clear[0]
    assert "Worker failed to boot" in log


def test_corrupt_model_stays_not_ready_and_refuses_predict_with_503(tmp_path: Path) -> None:
    env = model_env(tmp_path / "assets", SSDLITE_ARCHIVE.as_uri(), SSDLITE_SHA256)
    model_dir = Settings.from_env(env).model_dir
    model_dir.mkdir(parents=True)
    (model_dir / "frozen_inference_graph.pb").write_bytes(os.urandom(4096))  # right name, garbage inside
    with GunicornServer(env, tmp_path / "gunicorn.log") as server:
        server.wait_until(lambda: requests.get(f"{server.url}/health/ready", timeout=5).json()["status"] == "failed",
                          timeout=120, what="the model load to fail")
        ready = requests.get(f"{server.url}/health/ready", timeout=5)
        assert ready.status_code == 503
        assert "frozen_graph" in ready.json()["message"]
        assert requests.get(f"{server.url}/health/live", timeout=5).status_code == 200
        predict = requests.post(f"{server.url}/model/predict", files={"image": ("x.jpg", b"\xff\xd8")}, timeout=30)
        assert predict.status_code == 503
        assert predict.json() == {"status": "error", "message": predict.json()["message"]}
        assert "failed to load" in predict.json()["message"]
        assert server.proc.poll() is None  # still serving its probes, not crash-looping
    assert "model failed to load" in server.log_text()
