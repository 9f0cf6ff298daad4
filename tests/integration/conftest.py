"""Fixtures for the fetcher tests: the real model archives in ../shared and a loopback server."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.httpserver import LoopbackServer

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = (REPO / ".." / "shared" / "models").resolve()


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """../shared/models; its absence fails CI (CI=true) and skips elsewhere."""
    if not SHARED_MODELS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_MODELS} is missing: CI must have ../shared beside the repository")
        pytest.skip(f"{SHARED_MODELS} is missing")
    return SHARED_MODELS


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s
