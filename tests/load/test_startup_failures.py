"""A missing or corrupt model must never give a server that answers 500: it exits non-zero with a
clear line, or it stays not-ready and says why."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from config import Settings
from core.artifacts.install import ensure_model
from tests.conftest import model_pin
from tests.support.server import GunicornServer, model_env

pytestmark = [pytest.mark.slow, pytest.mark.load]


def exit_code(server: GunicornServer) -> int:
    try:
        return server.wait_exit(timeout=120)
    except subprocess.TimeoutExpired:
        server.stop()
        raise AssertionError(f"gunicorn kept running without a usable model:\n{server.log_text()[-3000:]}") from None


def cannot_start_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR app: cannot start:" in line]


def test_missing_model_exits_non_zero_with_one_clear_error_line(tmp_path: Path) -> None:
    env = model_env(tmp_path / "empty-assets", *model_pin())
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    assert exit_code(server) != 0
    log = server.log_text()
    (line,) = cannot_start_lines(log)
    assert str(Settings.from_env(env).model_dir) in line and "python -m core fetch" in line
    assert "Worker failed to boot" in log
    assert "Traceback" not in log and log.count("is not installed and verified") == 1  # said once, no stack


@pytest.mark.parametrize(
    ("setting", "message"),
    [({"THREADS": "0"}, "THREADS must be >= 1, got 0"), ({"HOST": "my host"}, "HOST must be an IP address")],
)
def test_bad_setting_exits_2_with_one_line_before_serving(tmp_path: Path, setting, message) -> None:
    """Plain ``gunicorn -c gunicorn.conf.py`` (as the Docker image runs it) with a bad setting: exit
    code 2, as on the command line, and one line that names the setting, not gunicorn's traceback."""
    env = {**model_env(tmp_path / "assets", *model_pin()), **setting}
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    assert exit_code(server) == 2
    log = server.log_text()
    (line,) = cannot_start_lines(log)
    assert message in line
    assert "Traceback" not in log and "Failed to read config file" not in log
    assert len(log.strip().splitlines()) == 1, log


def test_model_damaged_after_install_exits_non_zero(ssdlite_dir: Path, tmp_path: Path) -> None:
    """The installed files no longer match their manifest: the service refuses to serve them."""
    env = model_env(tmp_path / "assets", *model_pin())
    model_dir = Settings.from_env(env).model_dir
    shutil.copytree(ssdlite_dir, model_dir)
    (graph,) = model_dir.rglob("frozen_inference_graph.pb")
    graph.write_bytes(os.urandom(4096))
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    assert exit_code(server) != 0
    log = server.log_text()
    assert len(cannot_start_lines(log)) == 1
    assert "frozen_inference_graph.pb" in log  # the fetcher's warning names the damaged file


def test_verified_archive_that_is_not_a_model_stays_not_ready_and_predict_gets_503(tmp_path: Path) -> None:
    """The pin matches (the archive is what was asked for) but its graph is garbage: loading fails in
    the background, readiness says so, predict answers 503, and the process keeps its probes up."""
    archive = tmp_path / "broken-model.tar.gz"
    garbage = os.urandom(4096)
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("broken_model/frozen_inference_graph.pb")
        info.size = len(garbage)
        tar.addfile(info, io.BytesIO(garbage))
    pin = (archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest())
    env = model_env(tmp_path / "assets", *pin)
    settings = Settings.from_env(env)
    ensure_model(settings.source, settings.models_dir, show_progress=False)

    with GunicornServer(env, tmp_path / "gunicorn.log") as server:
        server.wait_until(
            lambda: requests.get(f"{server.url}/health/ready", timeout=5).json()["status"] == "failed",
            timeout=120,
            what="the model load to fail",
        )
        ready = requests.get(f"{server.url}/health/ready", timeout=5)
        assert ready.status_code == 503
        assert "frozen_graph" in ready.json()["message"]
        assert requests.get(f"{server.url}/health/live", timeout=5).status_code == 200
        predict = requests.post(f"{server.url}/model/predict", files={"image": ("x.jpg", b"\xff\xd8")}, timeout=30)
        assert predict.status_code == 503
        assert predict.json()["status"] == "error" and "failed to load" in predict.json()["message"]
        assert server.proc.poll() is None  # still up and answering its probes, not crash-looping
    log = server.log_text()
    assert "model failed to load" in log
    # TensorFlow was imported: its start-up notices stay out of the log (LOG_LEVEL is not DEBUG).
    assert "InitializeLog" not in log and "oneDNN" not in log and "cpu_feature_guard" not in log
