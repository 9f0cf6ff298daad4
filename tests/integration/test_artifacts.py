"""The fetcher against real archives (../shared), a loopback HTTP server and hand-made malicious archives."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path
from types import MappingProxyType

import pytest

from config import Settings
from core.artifacts import (MANIFEST, Limits, ensure_model, installed_model_dir, read_manifest,
                            record_derived_file, verify_installed)
from core.catalog import Catalog, load_catalog
from core.download import DownloadError, RetryPolicy, UnsupportedURLError, redact
from core.extract import UnsafeArchiveError, extract
from core.integrity import ArtifactError, IntegrityError
from tests.support.httpserver import Route

REPO = Path(__file__).resolve().parents[2]
SSDLITE = "ssdlite_mobilenet_v2_coco.tar.gz"
SSDLITE_SHA = "6165257e55960d20629acec1c55fa11a8f8f81fd8559ccd4f8f59269cdebfbb8"
TFLITE = "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip"
TFLITE_SHARED_SHA = "c9a7eaabba654149f996df50ccc387a21063e9c29fb5c53828b35f8e6573c20a"
DETECT_SHA = "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13"
FAST = RetryPolicy(attempts=3, base_delay=0.01, timeout=5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def custom(assets: Path, url: str, sha: str) -> Settings:
    return Settings(assets_dir=assets, model_url=url, model_sha256=sha)


def fetch(settings: Settings, **kw) -> Path:
    kw.setdefault("retry", FAST)
    return ensure_model(settings, show_progress=False, **kw)


def assert_nothing_installed(assets: Path) -> None:
    leftovers = [p.name for p in (assets / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def small_tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SMALL = small_tar_gz({"m/model.pb": b"graph bytes" * 100, "m/labels.txt": b"person\n"})


def with_entry(catalog: Catalog, name: str, **changes) -> Catalog:
    entries = dict(catalog.entries)
    entries[name] = dataclasses.replace(entries[name], **changes)
    return Catalog(MappingProxyType(entries))


# --- good archives ---------------------------------------------------------------------------

def test_custom_tar_from_file_url_installs_every_file(tmp_path, shared_models):
    settings = custom(tmp_path, (shared_models / SSDLITE).as_uri(), SSDLITE_SHA)
    assert installed_model_dir(settings) is None
    path = fetch(settings)
    assert path == tmp_path / "models" / f"custom-{SSDLITE_SHA[:12]}"
    manifest = verify_installed(path)
    assert manifest.model is None and manifest.archive["sha256"] == SSDLITE_SHA
    catalog_files = load_catalog().get("ssdlite_mobilenet_v2").files
    assert set(manifest.files) == set(catalog_files)
    assert {rel: d["sha256"] for rel, d in manifest.files.items()} == {
        rel: pins["sha256"] for rel, pins in catalog_files.items()}
    assert installed_model_dir(settings) == path
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
    """``core.optimize`` records its output; a second run replaces it, and nothing else may change."""
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
    assert str(err.value) == (f"digest mismatch for archive {TFLITE}: sha256 expected {'0' * 64}, "
                              f"got {TFLITE_SHARED_SHA}")
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
        fetch(custom(tmp_path, (shared_models / TFLITE).as_uri(), TFLITE_SHARED_SHA),
              catalog=catalog, mirror_of="ssd_mobilenet_v1_quant")
    assert_nothing_installed(tmp_path)


# --- network failures ------------------------------------------------------------------------

def test_truncated_download_fails_after_the_retries_and_installs_nothing(tmp_path, server):
    url = server.add("/m.tar.gz", Route(SMALL, truncate_first=99))
    with pytest.raises(DownloadError, match=rf"failed after 3 attempts: truncated download: got {len(SMALL) // 2} "
                                            rf"of {len(SMALL)} bytes"):
        fetch(custom(tmp_path, url, sha256(SMALL)))
    assert server.hits["/m.tar.gz"] == 3
    assert_nothing_installed(tmp_path)


@pytest.mark.parametrize("route", [Route(SMALL, truncate_first=1), Route(SMALL, fail_first=1),
                                   Route(SMALL, stall_first=1, stall=1.0)],
                         ids=["short-read", "http-503", "timeout"])
def test_a_transient_failure_is_retried(tmp_path, server, route, caplog):
    url = server.add("/m.tar.gz", route)
    retry = dataclasses.replace(FAST, timeout=0.3)
    with caplog.at_level(logging.WARNING, logger="core.artifacts"):
        path = fetch(custom(tmp_path, url, sha256(SMALL)), retry=retry)
    assert (path / "m/labels.txt").read_bytes() == b"person\n"
    assert server.hits["/m.tar.gz"] == 2
    assert "retrying in" in caplog.text


def test_client_errors_are_not_retried(tmp_path, server):
    url = server.add("/gone.tar.gz", Route(SMALL, status=404))
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(custom(tmp_path, url, sha256(SMALL)))
    assert server.hits["/gone.tar.gz"] == 1


def test_an_oversized_download_is_refused(tmp_path, server):
    url = server.add("/m.tar.gz", Route(SMALL))
    with pytest.raises(DownloadError, match="over the 100-byte limit"):
        fetch(custom(tmp_path, url, sha256(SMALL)), limits=Limits(archive_bytes=100))
    assert_nothing_installed(tmp_path)


def test_redirects_are_followed_to_http_only(tmp_path, server):
    url = server.add("/m.tar.gz", Route(SMALL))
    moved = server.add("/moved.tar.gz", Route(b"", redirect=url))
    assert (fetch(custom(tmp_path, moved, sha256(SMALL))) / "m/labels.txt").is_file()
    sneaky = server.add("/sneaky.tar.gz", Route(b"", redirect="ftp://127.0.0.1/m.tar.gz"))
    with pytest.raises(DownloadError, match="refusing redirect .* to ftp://127.0.0.1/m.tar.gz"):
        fetch(custom(tmp_path / "other", sneaky, sha256(SMALL)))
    assert server.hits["/sneaky.tar.gz"] == 1


def test_credentials_in_a_url_are_sent_but_stay_out_of_the_manifest(tmp_path, server):
    plain = server.add("/m.tar.gz", Route(SMALL, authorization="Basic dXNlcjpzM2NyZXQh"))  # user:s3cret!
    url = plain.replace("http://", "http://user:s3cret%21@")
    assert redact(url) == plain
    assert read_manifest(fetch(custom(tmp_path, url, sha256(SMALL)))).url == plain
    with pytest.raises(DownloadError, match="HTTP 401"):
        fetch(custom(tmp_path / "anonymous", plain, sha256(SMALL)))


def test_other_url_schemes_are_refused(tmp_path):
    with pytest.raises(UnsupportedURLError, match="unsupported URL scheme 'ftp'"):
        fetch(custom(tmp_path, "ftp://127.0.0.1/m.tar.gz", "0" * 64))


# --- second run ------------------------------------------------------------------------------

def test_a_second_run_downloads_nothing_and_a_damaged_install_is_replaced(tmp_path, server, caplog):
    url = server.add("/m.tar.gz", Route(SMALL))
    settings = custom(tmp_path, url, sha256(SMALL))
    path = fetch(settings)
    with caplog.at_level(logging.INFO, logger="core.artifacts"):
        assert fetch(settings) == path
    assert server.hits["/m.tar.gz"] == 1
    assert "nothing downloaded" in caplog.text
    (path / "m/model.pb").write_bytes(b"tampered")
    assert installed_model_dir(settings) is None
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
    assert installed_model_dir(settings, catalog=catalog) is not None
    assert installed_model_dir(settings) is None  # the real catalog pins the public archive, not the repack


# --- hostile archives ------------------------------------------------------------------------

def _tar_member(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def build_tar(path: Path, evil: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("model/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        info, data = evil
        if data is not None:
            info.size = len(data)
        tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"evil"


@pytest.mark.parametrize("make_entry", [
    lambda tmp: _file("../evil.txt"),
    lambda tmp: _file("model/../../evil.txt"),
    lambda tmp: _file(str(tmp / "evil.txt")),
    lambda tmp: _tar_member("model/link", tarfile.SYMTYPE, str(tmp / "evil.txt")),
    lambda tmp: _tar_member("model/hard", tarfile.LNKTYPE, "model/ok.txt"),
    lambda tmp: _tar_member("model/fifo", tarfile.FIFOTYPE),
    lambda tmp: _tar_member("model/null", tarfile.CHRTYPE),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo", "char-device"])
def test_hostile_tar_entries_are_rejected(tmp_path, make_entry):
    archive = build_tar(tmp_path / "evil.tar.gz", make_entry(tmp_path))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="archive entry"):
        extract(archive, dest, plain_name="x", max_bytes=1 << 20, max_entries=100)
    assert not (tmp_path / "evil.txt").exists()


def _zip_with(name: str, mode: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/ok.txt", b"ok")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.create_system = 3
            info.external_attr = mode << 16
        zf.writestr(info, b"/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize("name, mode", [("../evil.txt", None), ("/tmp/evil.txt", None),
                                        ("model/link", stat.S_IFLNK | 0o777), ("model/fifo", stat.S_IFIFO | 0o644)],
                         ids=["dotdot", "absolute", "symlink", "fifo"])
def test_hostile_zip_entries_are_rejected(tmp_path, name, mode):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip_with(name, mode))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="archive entry"):
        extract(archive, dest, plain_name="x", max_bytes=1 << 20, max_entries=100)
    assert not (dest / "model" / "link").exists()


def test_dot_slash_entries_as_made_by_tar_c_dir_dot_are_fine(tmp_path):
    archive = tmp_path / "dot.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data in (("./", None), ("./m/", None), ("./m/model.pb", b"graph")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE if data is None else tarfile.REGTYPE
            info.size = len(data or b"")
            tf.addfile(info, io.BytesIO(data) if data else None)
    dest = tmp_path / "out"
    dest.mkdir()
    assert extract(archive, dest, plain_name="x", max_bytes=100, max_entries=10) == ["m/model.pb"]
    assert (dest / "m/model.pb").read_bytes() == b"graph"


def test_a_hostile_archive_with_the_right_digest_installs_nothing(tmp_path):
    archive = build_tar(tmp_path / "evil.tar.gz", _file("../../evil.txt"))
    with pytest.raises(UnsafeArchiveError, match="absolute or unsafe path"):
        fetch(custom(tmp_path / "assets", archive.as_uri(), sha256(archive.read_bytes())))
    assert_nothing_installed(tmp_path / "assets")
    assert not (tmp_path / "evil.txt").exists()


def test_extracted_size_is_capped_for_tar(tmp_path):
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(small_tar_gz({"big.bin": bytes(3 << 20)}))
    with pytest.raises(UnsafeArchiveError, match="exceeds the 1048576-byte extraction limit"):
        fetch(custom(tmp_path / "assets", archive.as_uri(), sha256(archive.read_bytes())),
              limits=Limits(extracted_bytes=1 << 20))
    assert_nothing_installed(tmp_path / "assets")


def test_zip_bomb_stops_at_the_cap_counting_bytes_written(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.bin", bytes(32 << 20))
    assert archive.stat().st_size < 100_000
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="extraction limit"):
        extract(archive, dest, plain_name="x", max_bytes=1 << 20, max_entries=10)
    assert (dest / "bomb.bin").stat().st_size <= 1 << 20


def test_entry_count_is_capped(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(20):
            zf.writestr(f"f{i}.txt", b"x")
    with pytest.raises(UnsafeArchiveError, match="more than 10 entries"):
        extract(archive, tmp_path, plain_name="x", max_bytes=1 << 20, max_entries=10)


# --- command line ----------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"MODEL", "MODEL_URL", "MODEL_SHA256", "ASSETS_DIR", "LOG_LEVEL"}}
    return subprocess.run([sys.executable, "-m", "core.artifacts", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


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
    done = run_cli("fetch", "--model", "ssd_mobilenet_v1_quant", "--url", (shared_models / TFLITE).as_uri(),
                   "--sha256", TFLITE_SHARED_SHA, "--assets-dir", str(tmp_path), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert read_manifest(Path(done.stdout.splitlines()[-1])).model == "ssd_mobilenet_v1_quant"


def test_cli_wrong_digest_exits_1_with_the_mismatch(tmp_path, shared_models):
    done = run_cli("fetch", "--url", (shared_models / TFLITE).as_uri(), "--sha256", "1" * 64,
                   "--assets-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (f"error: digest mismatch for archive {TFLITE}: "
                                            f"sha256 expected {'1' * 64}, got {TFLITE_SHARED_SHA}")
    assert done.stdout == ""
    assert_nothing_installed(tmp_path)


@pytest.mark.parametrize("args, message", [
    (["--url", "ftp://127.0.0.1/m.zip", "--sha256", "0" * 64], "error: unsupported URL scheme 'ftp'"),
    (["--model", "yolo"], "error: unknown model 'yolo'; known models: ssd_mobilenet_v1,"),
    (["--url", "file:///m.zip"], "error: --url and --sha256 go together"),
])
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
