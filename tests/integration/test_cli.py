"""``python -m core predict`` with the real model: JSON lines, failures, annotated copies, one decode."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

import core.cli
import core.cli.predict
import core.model.images
import core.model.wrapper
from core import ModelLoadError, load_detector
from tests.conftest import IMAGES, ROOT, require
from tests.support.models import tampered_copy


@pytest.fixture()
def photos(tmp_path):
    """A folder with two real photos (one in a subfolder), a corrupt JPEG and a text file."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(require(IMAGES / "dog.jpg"), folder / "dog.jpg")
    shutil.copy(require(IMAGES / "baby-bear.jpg"), folder / "sub" / "baby-bear.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", "predict", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_folder_with_a_corrupt_file(photos, ssdlite_dir, tmp_path):
    out = tmp_path / "annotated"
    proc = run_cli(str(photos), "--model", str(ssdlite_dir), "--threshold", "0.5", "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    by_file = {line["file"]: line for line in lines}
    assert sorted(by_file) == sorted(str(photos / n) for n in ("broken.jpg", "dog.jpg", "sub/baby-bear.jpg"))
    assert len(lines) == 3

    broken = by_file[str(photos / "broken.jpg")]
    assert broken["status"] == "error" and "corrupt" in broken["message"] and "model" not in broken
    assert f"{photos / 'broken.jpg'}" in proc.stderr and "1 of 3 files failed" in proc.stderr

    bear = by_file[str(photos / "sub" / "baby-bear.jpg")]
    assert bear["status"] == "ok" and bear["model"] == str(ssdlite_dir)
    assert {p["label"] for p in bear["predictions"]} == {"person", "teddy bear"}
    assert set(bear["predictions"][0]) == {"label_id", "label", "probability", "detection_box"}
    dog = by_file[str(photos / "dog.jpg")]
    assert {"dog", "bicycle", "car"} <= {p["label"] for p in dog["predictions"]}
    assert all(p["probability"] >= 0.5 for p in dog["predictions"])

    assert bear["annotated"] == str(out / "sub" / "baby-bear.jpg")
    with Image.open(bear["annotated"]) as img, Image.open(IMAGES / "baby-bear.jpg") as original:
        assert img.format == "JPEG" and img.size == original.size
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == ["dog.jpg", "sub/baby-bear.jpg"]


def test_model_by_installed_name_exits_0_and_a_missing_model_exits_2(ssdlite_dir, tmp_path):
    # The fetcher installed the test model as <assets>/models/custom-<sha256[:12]>, with its manifest.
    name, assets = ssdlite_dir.name, ssdlite_dir.parent.parent
    ok = run_cli(str(IMAGES / "jockey.jpg"), "--model", name, "--assets-dir", str(assets), "--threshold", "0.5")
    assert ok.returncode == 0, ok.stderr
    line = json.loads(ok.stdout)
    assert line["status"] == "ok" and line["model"] == name
    assert {"horse", "person"} <= {p["label"] for p in line["predictions"]}
    bad = run_cli(str(IMAGES / "jockey.jpg"), "--model", "no_such_model", "--assets-dir", str(tmp_path))
    assert bad.returncode == 2 and "no_such_model" in bad.stderr and not bad.stdout


def test_two_models_share_one_decode_per_image(detector, photos, monkeypatch, capsys):
    calls = []
    real_decode = core.model.images.decode_image

    def counting_decode(*args, **kwargs):
        calls.append(args[0][:4])
        return real_decode(*args, **kwargs)

    for module in (core.model.images, core.model.wrapper, core.cli.predict):
        monkeypatch.setattr(module, "decode_image", counting_decode)
    # Two catalog names, both standing for the session's loaded detector (no second TF load).
    monkeypatch.setattr(core.cli.predict, "load_detector", lambda name, **kw: detector)
    code = core.cli.main(
        [
            "predict",
            str(photos / "dog.jpg"),
            str(photos / "sub"),
            "--model",
            "first",
            "--model",
            "second",
            "--threshold",
            "0.5",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["file"].rsplit("/", 1)[-1], line["model"]) for line in lines] == [
        ("dog.jpg", "first"),
        ("dog.jpg", "second"),
        ("baby-bear.jpg", "first"),
        ("baby-bear.jpg", "second"),
    ]
    assert lines[0]["predictions"] == lines[1]["predictions"]
    assert len(calls) == 2  # one decode per image, not per image and model


def test_installed_model_whose_files_changed_is_refused(ssdlite_dir, tmp_path):
    tampered_copy(ssdlite_dir, tmp_path)
    with pytest.raises(ModelLoadError, match="frozen_inference_graph.pb"):
        load_detector(ssdlite_dir.name, assets_dir=tmp_path)


def test_installed_model_with_a_planted_network_file_is_refused(ssdlite_dir, tmp_path):
    """By name the CLI loads only files the manifest lists, like the service."""
    copy = tmp_path / "models" / ssdlite_dir.name
    shutil.copytree(ssdlite_dir, copy)
    (copy / "planted.tflite").write_bytes(b"never verified")
    with pytest.raises(ModelLoadError, match="planted.tflite .* not in its manifest"):
        load_detector(ssdlite_dir.name, assets_dir=tmp_path, backend="tflite")


@pytest.mark.parametrize("log_level", ["INFO", "DEBUG"])
def test_the_command_line_is_quiet_unless_log_level_is_debug(ssdlite_dir, log_level):
    """A real CLI run imports TensorFlow: nothing of its start-up on stderr, unless LOG_LEVEL=DEBUG."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    proc = subprocess.run(
        [sys.executable, "-m", "core", "predict", str(ROOT / "samples" / "chelsea.jpg"), "--model", str(ssdlite_dir)],
        cwd=ROOT,
        env={**env, "LOG_LEVEL": log_level},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    noisy = "InitializeLog" in proc.stderr
    assert noisy == (log_level == "DEBUG"), proc.stderr
    if log_level == "INFO":
        assert proc.stderr == ""
