"""Shared fixtures: the real SSD model from ../shared, loaded once per test session.

The real-model tests must run in CI: when the model archive is missing and ``CI=true`` they
fail loudly instead of skipping.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = (ROOT / ".." / "shared").resolve()
IMAGES = SHARED / "images"
SSDLITE_ARCHIVE = SHARED / "models" / "ssdlite_mobilenet_v2_coco.tar.gz"
SSDLITE_SHA256 = "6165257e55960d20629acec1c55fa11a8f8f81fd8559ccd4f8f59269cdebfbb8"
QUANT_ARCHIVE = SHARED / "models" / "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip"
QUANT_SHA256 = "c9a7eaabba654149f996df50ccc387a21063e9c29fb5c53828b35f8e6573c20a"


def require(path: Path) -> Path:
    """Return ``path``; skip when it is missing locally, fail when CI should have it."""
    if not path.exists():
        message = f"{path} is missing (tests read models and photos from ../shared)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def image_bytes(name: str) -> bytes:
    return require(IMAGES / name).read_bytes()


@pytest.fixture(scope="session")
def test_assets(tmp_path_factory) -> Path:
    """A private assets dir for the session, so tests never touch the developer's ``assets/``."""
    return tmp_path_factory.mktemp("assets")


def model_pin() -> tuple[str, str]:
    """The archive under test: MODEL_URL/MODEL_SHA256 as .ci/run sets them, else ../shared's SSDLite."""
    if os.environ.get("MODEL_URL"):
        return os.environ["MODEL_URL"], os.environ.get("MODEL_SHA256", "")
    return require(SSDLITE_ARCHIVE).as_uri(), SSDLITE_SHA256


@pytest.fixture(scope="session")
def ssdlite_dir(test_assets: Path) -> Path:
    """The SSDLite model installed through the real fetcher (file:// URL + sha256)."""
    from config import Settings
    from core.artifacts.install import ensure_model

    url, sha256 = model_pin()
    settings = Settings(model_url=url, model_sha256=sha256, assets_dir=test_assets)
    return ensure_model(settings.source, settings.models_dir)


@pytest.fixture(scope="session")
def detector(ssdlite_dir: Path):
    """The frozen-graph SSDLite detector, loaded once and shared (it is thread-safe)."""
    from core import load_detector

    return load_detector(ssdlite_dir, fmt="frozen_graph")


@pytest.fixture(scope="session")
def settings(test_assets: Path):
    from config import Settings

    url, sha256 = model_pin()
    return Settings(
        model_url=url,
        model_sha256=sha256,
        assets_dir=test_assets,
        max_upload_bytes=2 * 1024 * 1024,
        max_image_pixels=30_000_000,
    )


@pytest.fixture()
def client(settings, detector):
    from app import create_app

    return create_app(settings, model=detector).test_client()


@pytest.fixture()
def request_records():
    """Records of the ``request`` logger (it does not propagate to the root, so caplog cannot see it)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("request")
    level = logger.level
    logger.setLevel(logging.INFO)  # the app leaves the level to LOG_LEVEL via the root logger
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)
