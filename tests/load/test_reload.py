"""SIGHUP (gunicorn's reload: new workers, old ones retired) keeps the metrics' counts, and the
metrics directory gunicorn.conf.py made is removed when the master exits."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import IMAGES, require
from tests.support.server import GunicornServer

pytestmark = [pytest.mark.slow, pytest.mark.load]

PREDICTED = re.compile(
    r'^objdet_http_requests_total\{endpoint="/model/predict",method="POST",status="200"\} (\S+)$', re.M
)


def predictions_counted(url: str) -> float:
    found = PREDICTED.search(requests.get(f"{url}/metrics", timeout=5).text)
    return float(found.group(1)) if found else 0.0


def metrics_dir_of(pid: int) -> Path:
    """The directory of the metric files the worker has mapped (its env shows the master's start)."""
    (folder,) = {Path(m.path).parent for m in psutil.Process(pid).memory_maps() if m.path.endswith(".db")}
    return folder


def test_sighup_reload_keeps_the_request_counts(gunicorn_env, tmp_path: Path) -> None:
    photo = require(IMAGES / "dog.jpg").read_bytes()
    with GunicornServer({**gunicorn_env, "WORKERS": "1"}, tmp_path / "gunicorn.log") as server:
        server.wait_ready()
        for _ in range(3):
            response = requests.post(f"{server.url}/model/predict", files={"image": ("dog.jpg", photo)}, timeout=30)
            assert response.status_code == 200
        assert predictions_counted(server.url) == 3
        (old,) = server.worker_pids()
        metrics_dir = metrics_dir_of(old)
        assert metrics_dir.is_dir()

        server.signal(signal.SIGHUP)
        server.wait_until(
            lambda: old not in server.worker_pids() and len(server.worker_pids()) == 1,
            timeout=60,
            what="the old worker to be replaced",
        )
        server.wait_ready()
        (new,) = server.worker_pids()
        assert metrics_dir_of(new) == metrics_dir
        assert predictions_counted(server.url) == 3
        assert server.stop() == 0
    assert not metrics_dir.exists()
