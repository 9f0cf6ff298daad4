"""Every path argument of ``python -m core`` as a user types it: relative from another working
directory, ``~``, symlinked; and a path that is missing or is not a model is one line, never a traceback.

(The int8 conversion with a relative path runs in ``test_int8.py``'s fixture, from another directory too.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IMAGES, model_pin, require
from tests.support.tools import core_cli

pytestmark = [pytest.mark.slow]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line of a failed run that printed no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory) -> tuple[Path, Path]:
    """``(elsewhere, home)``: a working directory that is neither the project nor the model's parent,
    and a home holding the assets, so ``~/assets`` and ``../assets`` both name them."""
    base = tmp_path_factory.mktemp("cli-paths")
    (base / "elsewhere").mkdir()
    return base / "elsewhere", base


@pytest.fixture(scope="module")
def fetched(workdirs) -> Path:
    """The model fetched with ``--assets-dir ~/assets`` (``~`` expanded by us: the shell would not, quoted)."""
    elsewhere, home = workdirs
    url, sha256 = model_pin()
    proc = core_cli("fetch", "--assets-dir", "~/assets", "--url", url, "--sha256", sha256, cwd=elsewhere, home=home)
    assert proc.returncode == 0, proc.stderr
    model_dir = Path(proc.stdout.splitlines()[-1])
    assert model_dir.is_absolute() and model_dir.parent == home / "assets" / "models"
    return model_dir


def test_fetch_and_verify_take_relative_home_and_symlinked_assets_dirs(fetched, workdirs):
    elsewhere, home = workdirs
    url, sha256 = model_pin()
    (home / "linked-assets").symlink_to(home / "assets")
    for assets in ("../assets", "~/assets", "../linked-assets"):
        for command in ("fetch", "verify"):
            proc = core_cli(command, "--assets-dir", assets, "--url", url, "--sha256", sha256, cwd=elsewhere, home=home)
            assert proc.returncode == 0, (command, assets, proc.stderr)
            assert Path(proc.stdout.splitlines()[-1]).resolve() == fetched
    proc = core_cli("verify", "--assets-dir", "../nowhere", "--url", url, "--sha256", sha256, cwd=elsewhere, home=home)
    assert str(home / "nowhere") in one_line_error(proc)


def test_optimize_prune_and_predict_take_a_relative_symlinked_model_dir(fetched, workdirs, tmp_path):
    elsewhere, home = workdirs
    copy = home / "copy" / fetched.name  # a copy, so pruning leaves the fixture's install whole
    shutil.copytree(fetched, copy)
    (home / "linked-model").symlink_to(copy)
    relative = "../linked-model"

    proc = core_cli("optimize", relative, cwd=elsewhere, home=home)
    assert proc.returncode == 0, proc.stderr
    written = Path(proc.stdout.splitlines()[-1])
    assert not written.is_absolute() and (elsewhere / written).is_file()  # named the way it was given

    proc = core_cli("prune", relative, "--backend", "tflite", cwd=elsewhere, home=home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("pruned ") and not any(copy.rglob("frozen_inference_graph.pb"))

    photo = tmp_path / "dog.jpg"
    shutil.copy(require(IMAGES / "dog.jpg"), photo)
    (home / "photos").symlink_to(tmp_path)
    out = "~/annotated"
    proc = core_cli(
        "predict", "~/photos/dog.jpg", "--model", relative, "--threshold", "0.5", "--out", out, cwd=elsewhere, home=home
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [json.loads(text) for text in proc.stdout.splitlines()]
    assert line["file"] == str(home / "photos" / "dog.jpg") and line["model"] == relative
    assert {"dog", "bicycle"} <= {p["label"] for p in line["predictions"]}
    assert Path(line["annotated"]) == home / "annotated" / "dog.jpg" and Path(line["annotated"]).is_file()

    proc = core_cli("predict", "~/photos/dog.jpg", "--model", "~/copy/" + fetched.name, cwd=elsewhere, home=home)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "args, bad",
    [
        (["optimize", "../missing"], "missing"),
        (["optimize", "../not-a-model"], "not-a-model"),
        (["optimize", "../not-a-model/frozen_inference_graph.pb"], "not-a-model/frozen_inference_graph.pb"),
        (["optimize", "../not-a-model", "--int8"], "not-a-model"),
        (["prune", "../missing", "--backend", "tflite"], "missing"),
        (["prune", "../not-a-model", "--backend", "tflite"], "not-a-model"),
        (["prune", "../not-a-model/frozen_inference_graph.pb", "--backend", "tflite"], "not-a-model/frozen"),
        (["predict", "../photo.jpg", "--model", "../missing"], "missing"),
        (["predict", "../photo.jpg", "--model", "../not-a-model"], "not-a-model"),
        (["fetch", "--assets-dir", "../not-a-model/frozen_inference_graph.pb"], "not-a-model/frozen"),
        (["verify", "--assets-dir", "../missing"], "missing"),
    ],
)
def test_a_path_that_is_missing_or_not_a_model_is_one_line(args, bad, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "frozen_inference_graph.pb").write_text("not a graph")
    (tmp_path / "photo.jpg").write_bytes(require(IMAGES / "dog.jpg").read_bytes())
    proc = core_cli(*args, cwd=elsewhere)
    line = one_line_error(proc)
    assert f"../{bad}" in line or str(tmp_path / bad) in line, line
