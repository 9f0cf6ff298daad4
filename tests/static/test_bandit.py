"""bandit finds no security issue in the service code (or each accepted one says why, with ``# nosec``)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_bandit_is_clean() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-r",
            "app.py",
            "config.py",
            "gunicorn.conf.py",
            "core",
            "api",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
