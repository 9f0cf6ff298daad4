"""``python -m core prune``: an installed model loses the files its backend never reads, on the record.

On the real SSDLite archive from ../shared. The ``.tflite`` files ``python -m core optimize``
would write are stand-ins here (recorded the same way, with the gate verdict): what is pruned
depends on the manifest and the file names, not on the networks, and the conversion itself is
tested in tests/integration/test_int8.py. Nothing here loads a network.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from core.artifacts.catalog import load_catalog
from core.artifacts.install import installed_model_dir
from core.artifacts.integrity import IntegrityError
from core.artifacts.manifest import MANIFEST, read_manifest, record_derived_file, verify_installed
from core.cli import main
from core.errors import ModelLoadError
from core.serving.factory import detector, files_read
from tests.support.artifacts import DETECT_SHA, SSDLITE, SSDLITE_SHA, TFLITE, custom, fetch, sha256

GRAPH = "ssdlite_mobilenet_v2_coco/frozen_inference_graph.pb"
SAVED_MODEL = "ssdlite_mobilenet_v2_coco/saved_model"
INT8 = "ssdlite_mobilenet_v2_coco/ssd_int8.tflite"
FLOAT = "ssdlite_mobilenet_v2_coco/ssd_float.tflite"


def converted(tmp_path: Path, shared_models: Path, gate_passed: bool = True):
    """SSDLite installed by the real fetcher, with a float and an int8 ``.tflite`` recorded as
    ``python -m core optimize --int8`` records them. Returns (settings, model dir)."""
    settings = custom(tmp_path, (shared_models / SSDLITE).as_uri(), SSDLITE_SHA)
    path = fetch(settings)
    (path / FLOAT).write_bytes(b"float stand-in")
    record_derived_file(path, FLOAT)
    (path / INT8).write_bytes(b"int8 stand-in")
    verdict = {"passed": gate_passed} | ({} if gate_passed else {"reason": "mean IoU 0.5 < 0.9"})
    record_derived_file(path, INT8, check=verdict)
    return settings, path


def files(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def test_each_backend_reads_its_own_file(tmp_path, shared_models):
    _, path = converted(tmp_path, shared_models)
    assert files_read(path, "tf") == files_read(path, "auto") == {GRAPH}
    assert files_read(path, "tflite") == {FLOAT}
    assert files_read(path, "tflite-int8") == {INT8}


def test_prune_for_litert_removes_the_graph_files_and_records_them(tmp_path, shared_models, capsys):
    settings, path = converted(tmp_path, shared_models)
    before = read_manifest(path)
    assert main(["prune", str(path), "--backend", "tflite-int8", "--backend", "tflite"]) == 0
    assert "pruned 5 file(s), 36.4 MB, for BACKEND=tflite-int8 or tflite" in capsys.readouterr().out
    assert files(path) == [MANIFEST, FLOAT, INT8]
    assert not (path / SAVED_MODEL).exists()  # emptied directories go too
    manifest = verify_installed(path)  # the rest still verifies; the pruned files are skipped
    assert manifest.pruned_for == ["tflite", "tflite-int8"]
    catalog_pins = load_catalog().get("ssdlite_mobilenet_v2").files
    assert manifest.pruned == {rel: {"sha256": pins["sha256"]} for rel, pins in catalog_pins.items()}
    assert manifest.files == before.files  # still what was installed: the pins stay satisfied
    assert installed_model_dir(settings.source, settings.models_dir) == path  # a fetch downloads nothing
    for backend in ("tflite-int8", "tflite"):  # located and re-verified (not loaded: stand-in files)
        assert "fallback" not in detector(settings.source, settings.models_dir, backend=backend).info.extra
    # BACKEND=auto serves what is left, preferring the int8 model (the graph it would pick is gone)
    assert files_read(path, "auto") == {INT8}
    assert detector(settings.source, settings.models_dir, backend="auto")._engine_factory is not None


def test_another_backend_fails_naming_the_pruned_files_and_the_image_to_use(tmp_path, shared_models):
    settings, path = converted(tmp_path, shared_models)
    assert main(["prune", str(path), "--backend", "tflite-int8"]) == 0
    assert files(path) == [MANIFEST, INT8]
    for backend, variant in (("tf", "-tf"), ("tflite", "-tflite")):
        with pytest.raises(ModelLoadError) as caught:
            detector(settings.source, settings.models_dir, backend=backend)
        message = str(caught.value)
        assert f"BACKEND={backend} cannot serve" in message and "pruned for BACKEND=tflite-int8" in message
        assert GRAPH in message and FLOAT in message and f"{SAVED_MODEL}/saved_model.pb" in message
        assert f"--build-arg BACKEND={backend} (release tag: {variant})" in message


def test_a_failed_gate_keeps_the_float_fallback(tmp_path, shared_models):
    settings, path = converted(tmp_path, shared_models, gate_passed=False)
    assert main(["prune", str(path), "--backend", "tflite-int8"]) == 0
    assert files(path) == [MANIFEST, FLOAT, INT8]  # the float model is served; the int8 verdict says so
    assert read_manifest(path).pruned_for == ["tflite", "tflite-int8"]
    model = detector(settings.source, settings.models_dir, backend="tflite-int8")
    assert model.info.extra["fallback"] == "int8 failed the accuracy gate: mean IoU 0.5 < 0.9"


def test_a_pruned_file_put_back_is_verified_again(tmp_path, shared_models):
    _, path = converted(tmp_path, shared_models)
    graph = (path / GRAPH).read_bytes()
    assert main(["prune", str(path), "--backend", "tflite-int8"]) == 0
    (path / GRAPH).write_bytes(graph)
    verify_installed(path)
    (path / GRAPH).write_bytes(graph[:-1])
    with pytest.raises(IntegrityError, match="frozen_inference_graph.pb"):
        verify_installed(path)


def test_a_backend_that_cannot_serve_the_model_prunes_nothing(tmp_path, shared_models, capsys):
    settings = custom(tmp_path, (shared_models / SSDLITE).as_uri(), SSDLITE_SHA)
    path = fetch(settings)  # no .tflite yet
    before = (path / MANIFEST).read_bytes()
    assert main(["prune", str(path), "--backend", "tflite-int8"]) == 1
    assert "no ssd_int8.tflite yet" in capsys.readouterr().err
    assert (path / MANIFEST).read_bytes() == before and GRAPH in files(path)


def test_a_damaged_install_is_not_pruned(tmp_path, shared_models, capsys):
    _, path = converted(tmp_path, shared_models)
    (path / FLOAT).write_bytes(b"changed")
    assert main(["prune", str(path), "--backend", "tflite-int8"]) == 1
    assert "digest mismatch" in capsys.readouterr().err and GRAPH in files(path)


def test_the_published_int8_model_keeps_everything(tmp_path, shared_models):
    """The TFLite zip is served as it is: its model and its label map are both read."""
    with zipfile.ZipFile(shared_models / TFLITE) as zf:
        assert sha256(zf.read("detect.tflite")) == DETECT_SHA
    settings = custom(tmp_path, (shared_models / TFLITE).as_uri(), sha256((shared_models / TFLITE).read_bytes()))
    path = fetch(settings)
    before = (path / MANIFEST).read_bytes()
    assert files_read(path, "tflite-int8") == files_read(path, "auto") == {"detect.tflite", "labelmap.txt"}
    assert main(["prune", str(path), "--backend", "tflite-int8"]) == 0
    assert (path / MANIFEST).read_bytes() == before
    # Served as it is (no ssd_int8.tflite), and said so: not the calibrated int8 conversion
    model = detector(settings.source, settings.models_dir, backend="tflite-int8").load()
    assert (model.backend, model.info.extra["backend"]) == ("tflite", "tflite")
