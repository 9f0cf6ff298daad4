"""Installing models: real archives from ../shared and a loopback server, pins, derived files, reuse and locking."""

from __future__ import annotations

import logging
import threading
import zipfile
from pathlib import Path

import pytest

from config import Settings
from core.artifacts.catalog import load_catalog
from core.artifacts.install import installed_model_dir
from core.artifacts.integrity import ArtifactError, IntegrityError
from core.artifacts.manifest import MANIFEST, read_manifest, record_derived_file, verify_installed
from tests.support.artifacts import (
    DETECT_SHA,
    SMALL,
    SSDLITE,
    SSDLITE_SHA,
    TFLITE,
    TFLITE_SHARED_SHA,
    assert_nothing_installed,
    custom,
    fetch,
    sha256,
    with_entry,
)
from tests.support.httpserver import Route

# --- good archives ---------------------------------------------------------------------------


def test_custom_tar_from_file_url_installs_every_file(tmp_path, shared_models):
    settings = custom(tmp_path, (shared_models / SSDLITE).as_uri(), SSDLITE_SHA)
    assert installed_model_dir(settings.source, settings.models_dir) is None
    path = fetch(settings)
    assert path == tmp_path / "models" / f"custom-{SSDLITE_SHA[:12]}"
    manifest = verify_installed(path)
    assert manifest.model is None and manifest.archive["sha256"] == SSDLITE_SHA
    catalog_files = load_catalog().get("ssdlite_mobilenet_v2").files
    assert set(manifest.files) == set(catalog_files)
    assert {rel: d["sha256"] for rel, d in manifest.files.items()} == {
        rel: pins["sha256"] for rel, pins in catalog_files.items()
    }
    assert installed_model_dir(settings.source, settings.models_dir) == path
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [f".custom-{SSDLITE_SHA[:12]}.lock", path.name]


def test_ssdlite_mirror_over_http_passes_the_catalog_file_pins(tmp_path, shared_models, server):
    url = server.add("/ssdlite.tar.gz", Route(shared_models / SSDLITE))
    path = fetch(custom(tmp_path, url, SSDLITE_SHA), mirror_of="ssdlite_mobilenet_v2")
    manifest = read_manifest(path)
    assert manifest.model == "ssdlite_mobilenet_v2" and manifest.url == url
    assert (path / "ssdlite_mobilenet_v2_coco/saved_model/saved_model.pb").stat().st_size > 1_000_000


def test_repacked_tflite_zip_over_http_passes_the_catalog_file_pins(tmp_path, shared_models, server):
    url = server.add("/tflite.zip", Route(shared_models / TFLITE))
    path = fetch(custom(tmp_path, url, TFLITE_SHARED_SHA), mirror_of="ssd_mobilenet_v1_quant")
    assert sorted(p.name for p in path.iterdir()) == [MANIFEST, "detect.tflite", "labelmap.txt"]
    assert sha256((path / "detect.tflite").read_bytes()) == DETECT_SHA
    assert read_manifest(path).files["detect.tflite"] == {"sha256": DETECT_SHA}


def test_catalog_model_uses_the_catalog_url_and_archive_pins(tmp_path, shared_models, server):
    url = server.add("/zoo/tflite.zip", Route(shared_models / TFLITE))
    catalog = with_entry(load_catalog(), "ssd_mobilenet_v1_quant", url=url, archive={"sha256": TFLITE_SHARED_SHA})
    path = fetch(Settings(assets_dir=tmp_path, model="ssd_mobilenet_v1_quant"), catalog=catalog)
    assert path == tmp_path / "models" / "ssd_mobilenet_v1_quant"
    assert read_manifest(path).model == "ssd_mobilenet_v1_quant"


def test_a_derived_file_is_recorded_and_can_be_made_again(tmp_path):
    """``python -m core optimize`` records its output; a second run replaces it, and nothing else may change."""
    archive = tmp_path / "small.tar.gz"
    archive.write_bytes(SMALL)
    path = fetch(custom(tmp_path, archive.as_uri(), sha256(SMALL)))
    derived = path / "m" / "model.tflite"
    for version in (b"first", b"second"):
        derived.write_bytes(version)
        record_derived_file(path, "m/model.tflite")
        assert verify_installed(path).files["m/model.tflite"]["sha256"] == sha256(version)
    assert read_manifest(path).derived == ["m/model.tflite"]
    with pytest.raises(ArtifactError, match="came with the model archive"):
        record_derived_file(path, "m/model.pb")  # a fetched file is never re-approved
    (path / "m" / "labels.txt").write_bytes(b"cat\n")
    with pytest.raises(IntegrityError, match="labels.txt"):
        record_derived_file(path, "m/model.tflite")


def test_a_bare_model_file_url_installs_that_file(tmp_path, shared_models):
    with zipfile.ZipFile(shared_models / TFLITE) as zf:
        bare = tmp_path / "detect.tflite"
        bare.write_bytes(zf.read("detect.tflite"))
    path = fetch(custom(tmp_path / "assets", bare.as_uri(), DETECT_SHA))
    assert sha256((path / "detect.tflite").read_bytes()) == DETECT_SHA


# --- digests ---------------------------------------------------------------------------------


def test_wrong_archive_digest_names_the_archive_and_installs_nothing(tmp_path, shared_models):
    with pytest.raises(IntegrityError) as err:
        fetch(custom(tmp_path, (shared_models / TFLITE).as_uri(), "0" * 64))
    assert str(err.value) == (
        f"digest mismatch for archive {TFLITE}: sha256 expected {'0' * 64}, got {TFLITE_SHARED_SHA}"
    )
    assert_nothing_installed(tmp_path)


def test_wrong_file_digest_names_the_file_and_installs_nothing(tmp_path, shared_models):
    catalog = load_catalog()
    files = dict(catalog.get("ssd_mobilenet_v1_quant").files, **{"detect.tflite": {"sha256": "f" * 64}})
    catalog = with_entry(catalog, "ssd_mobilenet_v1_quant", files=files)
    settings = custom(tmp_path, (shared_models / TFLITE).as_uri(), TFLITE_SHARED_SHA)
    with pytest.raises(IntegrityError) as err:
        fetch(settings, catalog=catalog, mirror_of="ssd_mobilenet_v1_quant")
    assert str(err.value) == f"digest mismatch for detect.tflite: sha256 expected {'f' * 64}, got {DETECT_SHA}"
    assert_nothing_installed(tmp_path)


def test_a_pinned_file_missing_from_the_archive_fails(tmp_path, shared_models):
    catalog = load_catalog()
    files = dict(catalog.get("ssd_mobilenet_v1_quant").files, **{"anchors.txt": {"sha256": "a" * 64}})
    catalog = with_entry(catalog, "ssd_mobilenet_v1_quant", files=files)
    with pytest.raises(IntegrityError, match=f"archive {TFLITE} lacks pinned file.*anchors.txt"):
        fetch(
            custom(tmp_path, (shared_models / TFLITE).as_uri(), TFLITE_SHARED_SHA),
            catalog=catalog,
            mirror_of="ssd_mobilenet_v1_quant",
        )
    assert_nothing_installed(tmp_path)


# --- network failures ------------------------------------------------------------------------


def test_a_second_run_downloads_nothing_and_a_damaged_install_is_replaced(tmp_path, server, caplog):
    url = server.add("/m.tar.gz", Route(SMALL))
    settings = custom(tmp_path, url, sha256(SMALL))
    path = fetch(settings)
    with caplog.at_level(logging.INFO, logger="core.artifacts"):
        assert fetch(settings) == path
    assert server.hits["/m.tar.gz"] == 1
    assert "nothing downloaded" in caplog.text
    (path / "m/model.pb").write_bytes(b"tampered")
    assert installed_model_dir(settings.source, settings.models_dir) is None
    fetch(settings)
    assert server.hits["/m.tar.gz"] == 2
    assert (path / "m/model.pb").read_bytes() == b"graph bytes" * 100


def test_concurrent_installs_download_once(tmp_path, server):
    url = server.add("/m.tar.gz", Route(SMALL, stall_first=1, stall=0.3))
    settings = custom(tmp_path, url, sha256(SMALL))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(fetch(settings))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2 and results[0] == results[1]
    assert server.hits["/m.tar.gz"] == 1


def test_installed_model_from_other_catalog_pins_is_not_reused(tmp_path, shared_models, server):
    url = server.add("/zoo/tflite.zip", Route(shared_models / TFLITE))
    catalog = with_entry(load_catalog(), "ssd_mobilenet_v1_quant", url=url, archive={"sha256": TFLITE_SHARED_SHA})
    settings = Settings(assets_dir=tmp_path, model="ssd_mobilenet_v1_quant")
    fetch(settings, catalog=catalog)
    assert installed_model_dir(settings.source, settings.models_dir, catalog=catalog) is not None
    assert (
        installed_model_dir(settings.source, settings.models_dir) is None
    )  # the real catalog pins the public archive, not the repack


# --- hostile archives ------------------------------------------------------------------------


# --- offline ------------------------------------------------------------------------------------


def test_unreachable_catalog_download_says_what_to_do_offline(tmp_path):
    """A catalog model whose server cannot be reached (a loopback port nobody listens on): the error,
    one line, names the URL and tells how to use a local archive instead."""
    from core.artifacts.download import NetworkError
    from tests.support.server import free_port

    url = f"http://127.0.0.1:{free_port()}/zoo/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip"
    catalog = with_entry(load_catalog(), "ssd_mobilenet_v1_quant", url=url)
    with pytest.raises(NetworkError) as failed:
        fetch(Settings(assets_dir=tmp_path, model="ssd_mobilenet_v1_quant"), catalog=catalog)
    message = str(failed.value)
    assert "\n" not in message and url in message and "cannot connect" in message
    assert message.endswith(
        "; offline? point MODEL_URL and MODEL_SHA256 at a local archive, e.g. "
        "MODEL_URL=file:///path/to/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip MODEL_SHA256=<sha256>"
    )
    assert_nothing_installed(tmp_path)


def test_unreachable_custom_url_gets_no_offline_hint(tmp_path):
    """MODEL_URL is the user's own: the error says it could not be reached, nothing more."""
    from core.artifacts.download import NetworkError
    from tests.support.server import free_port

    with pytest.raises(NetworkError) as failed:
        fetch(custom(tmp_path, f"http://127.0.0.1:{free_port()}/m.tar.gz", SSDLITE_SHA))
    assert "offline?" not in str(failed.value)
