"""Fixtures for tests that run the real gunicorn: the environment that serves the installed test model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import model_pin
from tests.support.server import model_env


@pytest.fixture(scope="session")
def gunicorn_env(ssdlite_dir: Path, test_assets: Path) -> dict[str, str]:
    """Serve the SSDLite model that ``ssdlite_dir`` installed through the fetcher."""
    return {**model_env(test_assets, *model_pin()), "LOG_LEVEL": "INFO"}
