"""Fixtures for the fetcher tests: the real model archives in ../shared and a loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SHARED, require
from tests.support.httpserver import LoopbackServer


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """../shared/models; its absence fails CI (CI=true) and skips elsewhere."""
    return require(SHARED / "models")


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s
