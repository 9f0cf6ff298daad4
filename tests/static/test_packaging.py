"""The project installs as a package with an ``objdet`` command (``make`` installs it into .venv, editable)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_objdet_is_the_command_lines_entry_point_and_the_service_code_is_packaged():
    assert PYPROJECT["project"]["scripts"] == {"objdet": "core.cli:main"}
    assert PYPROJECT["build-system"]["build-backend"] == "setuptools.build_meta"
    tool = PYPROJECT["tool"]["setuptools"]
    assert sorted(tool["py-modules"]) == ["app", "config"]
    assert tool["packages"]["find"]["include"] == ["core*", "api*"]
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --no-deps -e ." in makefile


def test_venv_objdet_help_runs():
    """``make`` (any target) installs the project into .venv; then ``.venv/bin/objdet`` works anywhere."""
    objdet = ROOT / ".venv" / "bin" / "objdet"
    if not objdet.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{objdet} is missing: make installs the project into .venv (pip install -e .)")
        pytest.skip(f"{objdet} is missing: run make (it installs the project into .venv)")
    proc = subprocess.run([str(objdet), "--help"], cwd="/", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: objdet ") and "predict" in proc.stdout


@pytest.mark.slow
def test_editable_install_gives_a_working_objdet_outside_the_repo(tmp_path: Path):
    """What ``make`` does, in a throwaway venv that borrows this one's dependencies: pip install -e .
    --no-deps (pip fetches the build backend, as make does), then objdet runs from another directory."""
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=120)
    (next((venv / "lib").glob("python3*")) / "site-packages" / "deps.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n"
    )
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    try:
        for args, expected in ((["--help"], "usage: objdet "), (["predict", "--help"], "usage: objdet predict")):
            proc = subprocess.run(
                [str(venv / "bin" / "objdet"), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
            )
            assert proc.returncode == 0 and proc.stdout.startswith(expected), proc.stderr
    finally:
        for leftover in ROOT.glob("*.egg-info"):  # setuptools writes it beside pyproject.toml
            shutil.rmtree(leftover, ignore_errors=True)
