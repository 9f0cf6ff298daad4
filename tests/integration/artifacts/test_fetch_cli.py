"""``python -m core fetch`` and ``verify``: exit codes, output and messages."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.artifacts.manifest import read_manifest
from tests.integration.artifacts.test_extract import HOSTILE_TARS
from tests.support.artifacts import (
    REPO,
    TFLITE,
    TFLITE_SHARED_SHA,
    assert_nothing_installed,
)
from tests.support.tools import core_cli


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return core_cli(*args, timeout=120)


def test_cli_fetch_prints_the_dir_and_verify_agrees(tmp_path, shared_models):
    url, assets = (shared_models / TFLITE).as_uri(), str(tmp_path)
    done = run_cli("fetch", "--url", url, "--sha256", TFLITE_SHARED_SHA, "--assets-dir", assets)
    assert done.returncode == 0, done.stderr
    expected = tmp_path / "models" / f"custom-{TFLITE_SHARED_SHA[:12]}"
    assert done.stdout.splitlines()[-1] == str(expected)
    assert f"{TFLITE}: 100% 2.9/2.9 MB" in done.stderr
    checked = run_cli("verify", "--url", url, "--sha256", TFLITE_SHARED_SHA, "--assets-dir", assets)
    assert (checked.returncode, checked.stdout.splitlines()[-1]) == (0, str(expected))


def test_cli_mirror_of_a_catalog_model(tmp_path, shared_models):
    done = run_cli(
        "fetch",
        "--model",
        "ssd_mobilenet_v1_quant",
        "--url",
        (shared_models / TFLITE).as_uri(),
        "--sha256",
        TFLITE_SHARED_SHA,
        "--assets-dir",
        str(tmp_path),
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert read_manifest(Path(done.stdout.splitlines()[-1])).model == "ssd_mobilenet_v1_quant"


def test_cli_wrong_digest_exits_1_with_the_mismatch(tmp_path, shared_models):
    done = run_cli(
        "fetch", "--url", (shared_models / TFLITE).as_uri(), "--sha256", "1" * 64, "--assets-dir", str(tmp_path)
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"error: digest mismatch for archive {TFLITE}: sha256 expected {'1' * 64}, got {TFLITE_SHARED_SHA}"
    )
    assert done.stdout == ""
    assert_nothing_installed(tmp_path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--url", "ftp://127.0.0.1/m.zip", "--sha256", "0" * 64], "error: unsupported URL scheme 'ftp'"),
        (["--model", "yolo"], "error: unknown model 'yolo'; known models: ssd_mobilenet_v1,"),
        (["--url", "file:///m.zip"], "error: --url and --sha256 go together"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, args, message):
    done = run_cli("fetch", *args, "--assets-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_verify_fails_when_nothing_is_installed(tmp_path):
    done = run_cli("verify", "--url", "file:///m.zip", "--sha256", "0" * 64, "--assets-dir", str(tmp_path))
    assert done.returncode == 1 and "no usable .manifest.json" in done.stderr


def test_the_fetcher_does_not_import_tensorflow():
    code = "import sys, core.artifacts; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


@pytest.mark.parametrize("name, make, message", HOSTILE_TARS, ids=[h[0] for h in HOSTILE_TARS])
def test_cli_fetch_of_a_hostile_archive_prints_one_short_line(tmp_path, name, make, message):
    """Even with its sha256 pinned (by mistake), a hostile archive ends in one line, not a traceback."""
    archive = tmp_path / name
    data = make()
    archive.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k not in {"MODEL", "MODEL_URL", "MODEL_SHA256", "ASSETS_DIR"}}
    pin = ["--url", archive.as_uri(), "--sha256", hashlib.sha256(data).hexdigest()]
    done = subprocess.run(
        [sys.executable, "-m", "core", "fetch", "--no-progress", *pin, "--assets-dir", str(tmp_path / "assets")],
        cwd=REPO,
        env={**env, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 600, done.stderr[:2000]
    assert lines[0].startswith("error: ") and message in lines[0]
    assert_nothing_installed(tmp_path / "assets")
