"""Short soak in CI (~25 s of 8 clients); ``python -m tests.load.soak`` runs the full 5 minutes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from tests.conftest import IMAGES, require
from tests.load.soak import MAX_GROWTH, PHOTOS, run_soak
from tests.support.load import read_images
from tests.support.server import GunicornServer

pytestmark = [pytest.mark.slow, pytest.mark.load]


def test_short_soak_has_no_errors_and_no_memory_creep(gunicorn_env, tmp_path: Path) -> None:
    images = read_images([require(IMAGES / name) for name in PHOTOS])
    with GunicornServer({**gunicorn_env, "WORKERS": "1"}, tmp_path / "gunicorn.log") as server:
        server.wait_ready()
        report = run_soak(server, images, duration=20, warmup=8, clients=8)
    print(asdict(report))
    assert report.errors == 0
    assert report.requests > 0
    assert report.rss_growth < MAX_GROWTH, asdict(report)
