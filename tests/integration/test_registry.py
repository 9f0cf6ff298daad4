"""The service loads only verified files: build_model() re-checks the fetcher's manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app import build_model
from config import Settings
from core import ModelLoadError
from tests.conftest import image_bytes
from tests.support.models import tampered_copy


def test_installed_model_loads_with_metadata_from_its_manifest(settings: Settings, ssdlite_dir: Path):
    detector = build_model(settings).load()
    info = detector.info.to_json()
    assert info["id"] == settings.model_name
    assert info["version"] == settings.model_sha256[:12]
    assert info["backend"] == "tf"
    assert {"teddy bear", "person"} <= {d.label for d in detector.detect(image_bytes("baby-bear.jpg"), 0.9)}


def test_model_that_was_never_fetched_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="not installed and verified.*core fetch"):
        build_model(Settings(assets_dir=tmp_path))


def test_tampered_model_file_is_refused(settings: Settings, ssdlite_dir: Path, tmp_path: Path):
    tampered_copy(ssdlite_dir, tmp_path)
    with pytest.raises(ModelLoadError, match="not installed and verified"):
        build_model(Settings(model_url=settings.model_url, model_sha256=settings.model_sha256, assets_dir=tmp_path))


def test_a_network_file_missing_from_the_manifest_is_refused(settings: Settings, ssdlite_dir: Path, tmp_path: Path):
    copy = tmp_path / "models" / ssdlite_dir.name
    shutil.copytree(ssdlite_dir, copy)
    (copy / "planted.tflite").write_bytes(b"never verified")
    planted = Settings(
        model_url=settings.model_url, model_sha256=settings.model_sha256, assets_dir=tmp_path, backend="tflite"
    )
    with pytest.raises(ModelLoadError, match="planted.tflite .* not in its manifest"):
        build_model(planted)


def test_tflite_before_conversion_says_how_to_convert(settings: Settings, ssdlite_dir: Path, tmp_path: Path):
    copy = tmp_path / "models" / ssdlite_dir.name
    shutil.copytree(ssdlite_dir, copy)
    unconverted = Settings(
        model_url=settings.model_url, model_sha256=settings.model_sha256, assets_dir=tmp_path, backend="tflite"
    )
    with pytest.raises(ModelLoadError, match=r"no TFLite file yet: run `python -m core optimize"):
        build_model(unconverted)


def test_a_backend_the_catalog_does_not_list_is_refused(tmp_path: Path):
    from core.artifacts.install import ensure_model
    from core.artifacts.plan import Source
    from core.serving.factory import detector
    from tests.conftest import QUANT_ARCHIVE, require

    archive = require(QUANT_ARCHIVE)
    settings = Settings(
        assets_dir=tmp_path,
        model_url=archive.as_uri(),
        model_sha256="c9a7eaabba654149f996df50ccc387a21063e9c29fb5c53828b35f8e6573c20a",
    )
    mirror = Source("ssd_mobilenet_v1_quant", settings.model_url, settings.model_sha256, mirror=True)
    path = ensure_model(mirror, settings.models_dir, show_progress=False)
    with pytest.raises(ModelLoadError, match="runs on the tflite backend, not tf"):
        detector(path.name, settings.models_dir, backend="tf")
    assert detector(path.name, settings.models_dir).load().backend == "tflite"
