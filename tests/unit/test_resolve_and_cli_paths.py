"""Model names vs paths, and which files the command line picks up and writes (no model needed)."""

from pathlib import Path

import pytest

from config import Settings
from core import is_path, load_detector
from core.cli import build_parser
from core.cli.predict import annotated_path, find_images
from core.errors import ModelLoadError


@pytest.mark.parametrize(
    "value, expected",
    [
        ("ssd_mobilenet_v1", False),
        ("custom-6165257e5596", False),
        ("./ssd_mobilenet_v1", True),
        ("models/x", True),
        (Path("x"), True),
    ],
)
def test_paths_and_model_names_are_told_apart(value, expected):
    assert is_path(value) is expected


def test_unknown_name_lists_the_catalog(tmp_path):
    with pytest.raises(ModelLoadError, match="neither a model path, a catalog model .*ssd_mobilenet_v1"):
        load_detector("no_such_model", assets_dir=tmp_path)


def test_catalog_model_without_a_public_url_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelLoadError, match="no public download URL; give its archive with MODEL_URL"):
        load_detector("ssdlite_mobilenet_v2", assets_dir=tmp_path)
    assert not (tmp_path / "models" / "ssdlite_mobilenet_v2").exists()


def test_installed_model_without_a_manifest_is_refused(tmp_path):
    (tmp_path / "models" / "custom-0123456789ab").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="manifest"):
        load_detector("custom-0123456789ab", assets_dir=tmp_path)


def test_missing_path_is_reported_as_a_path(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_detector(tmp_path / "nothing" / "here")


def test_folders_are_searched_recursively_for_image_extensions(tmp_path):
    for name in ("b.JPG", "sub/a.png", "sub/deeper/c.webp", "notes.txt", "sub/model.pb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    named = tmp_path / "notes.txt"  # a file named explicitly is always tried
    missing = tmp_path / "gone.jpg"
    found = find_images([tmp_path, named, missing, tmp_path / "b.JPG"])
    assert [(f.relative_to(tmp_path).as_posix(), rel.as_posix()) for f, rel in found] == [
        ("b.JPG", "b.JPG"),
        ("sub/a.png", "sub/a.png"),
        ("sub/deeper/c.webp", "sub/deeper/c.webp"),
        ("notes.txt", "notes.txt"),
        ("gone.jpg", "gone.jpg"),
    ]


@pytest.mark.parametrize(
    "rel, tag, expected, fmt",
    [
        ("photo.jpg", None, "photo.jpg", "jpeg"),
        ("a/photo.JPEG", "v2", "a/photo.v2.JPEG", "jpeg"),
        ("shot.png", None, "shot.png", "png"),
        ("scan.tif", None, "scan.tif.jpg", "jpeg"),
        ("scan.tif", "v1", "scan.tif.v1.jpg", "jpeg"),
    ],
)
def test_annotated_copies_keep_the_layout_and_never_collide(rel, tag, expected, fmt):
    out = Path("/out")
    assert annotated_path(out, Path(rel), tag) == (out / expected, fmt)


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan", "abc"])
def test_threshold_outside_0_1_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["predict", "x.jpg", "--model", "m", "--threshold", value])
    assert exit_info.value.code == 2
    assert "must be a number in [0, 1]" in capsys.readouterr().err


def test_webapp_switch_is_read_from_the_environment():
    from config import ConfigError

    assert Settings.from_env({}).webapp_enabled is True
    assert Settings.from_env({"WEBAPP_ENABLED": "false"}).webapp_enabled is False
    with pytest.raises(ConfigError, match="WEBAPP_ENABLED"):
        Settings.from_env({"WEBAPP_ENABLED": "sometimes"})


def test_every_interface_has_the_same_default_threshold():
    """REST (DEFAULT_THRESHOLD's default), the command line and the Python API all use MAX's 0.7."""
    import inspect

    from core import DEFAULT_THRESHOLD, ModelWrapper

    assert DEFAULT_THRESHOLD == 0.7
    assert Settings().default_threshold == DEFAULT_THRESHOLD
    assert build_parser().parse_args(["predict", "x.jpg", "--model", "m"]).threshold == DEFAULT_THRESHOLD
    for method in (ModelWrapper.detect, ModelWrapper.predict_json):
        assert inspect.signature(method).parameters["threshold"].default == DEFAULT_THRESHOLD
