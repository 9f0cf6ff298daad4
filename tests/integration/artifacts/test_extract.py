"""Extraction of hand-made hostile tar and zip archives: links, traversal, bombs and caps."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from core.artifacts.extract import UnsafeArchiveError, extract
from core.artifacts.install import Limits
from tests.support.artifacts import (
    assert_nothing_installed,
    custom,
    fetch,
    sha256,
    small_tar_gz,
)


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


@pytest.mark.parametrize(
    "make_entry",
    [
        lambda tmp: _file("../evil.txt"),
        lambda tmp: _file("model/../../evil.txt"),
        lambda tmp: _file(str(tmp / "evil.txt")),
        lambda tmp: _tar_member("model/link", tarfile.SYMTYPE, str(tmp / "evil.txt")),
        lambda tmp: _tar_member("model/hard", tarfile.LNKTYPE, "model/ok.txt"),
        lambda tmp: _tar_member("model/fifo", tarfile.FIFOTYPE),
        lambda tmp: _tar_member("model/null", tarfile.CHRTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo", "char-device"],
)
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


@pytest.mark.parametrize(
    "name, mode",
    [
        ("../evil.txt", None),
        ("/tmp/evil.txt", None),
        ("model/link", stat.S_IFLNK | 0o777),
        ("model/fifo", stat.S_IFIFO | 0o644),
    ],
    ids=["dotdot", "absolute", "symlink", "fifo"],
)
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
        fetch(
            custom(tmp_path / "assets", archive.as_uri(), sha256(archive.read_bytes())),
            limits=Limits(extracted_bytes=1 << 20),
        )
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
