"""Extraction of hand-made hostile tar and zip archives: links, traversal, bombs and caps."""

from __future__ import annotations

import gzip
import io
import lzma
import random
import re
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


# --- hostile tar streams: bounded memory and time, one short line -------------------------------


def _raw_header(name: str, size: int, kind: bytes, negative: bool = False) -> bytes:
    """A 512-byte tar header with any size (tarfile refuses to write the hostile ones)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT)[:512])
    block[124:136] = b"\xff" * 12 if negative else b"%011o\x00" % size
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def _padded(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 512)


def _long_name_tar_gz() -> bytes:
    """A GNU long-name member declaring a 64 MiB name (64 KiB compressed): tarfile would read it
    into memory whole and print it in its error."""
    size = 64 << 20
    return gzip.compress(_raw_header("././@LongLink", size, b"L") + b"a" * size + b"\x00" * 1024)


def _pax_digits_tar_gz() -> bytes:
    """CVE-2024-6232: a pax record length of 30,000 digits makes tarfile's parser quadratic."""
    pax = b"0" * 30_000 + b"1 path=x\n"
    return gzip.compress(_raw_header("pax", len(pax), b"x") + _padded(pax) + b"\x00" * 1024)


def _negative_size_tar_gz() -> bytes:
    return gzip.compress(_raw_header("model/a.bin", 0, b"0", negative=True) + b"\x00" * 1024)


def _corrupt_xz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(3):
            data = random.Random(i).randbytes(100_000)
            info = tarfile.TarInfo(f"model/{i}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    xz = bytearray(lzma.compress(buf.getvalue()))
    xz[int(len(xz) * 0.8)] ^= 0xFF  # deep inside: the first members read fine
    return bytes(xz)


def _corrupt_gz_late() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = random.Random(0).randbytes(100_000)
        info = tarfile.TarInfo("model/a.bin")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    gz = bytearray(gzip.compress(buf.getvalue()))
    gz[-12] ^= 0xFF  # inside the data: only the CRC at the end can tell
    return bytes(gz)


HOSTILE_TARS = [
    ("longname.tar.gz", _long_name_tar_gz, "GNU long name of 67108864 bytes; the limit is 65536"),
    ("pax.tar.gz", _pax_digits_tar_gz, "malformed pax header"),
    ("negative.tar.gz", _negative_size_tar_gz, "negative size"),
    ("corrupt.tar.xz", _corrupt_xz, "corrupt compressed stream"),
    ("crc.tar.gz", _corrupt_gz_late, "CRC check failed"),
]


@pytest.mark.parametrize("name, make, message", HOSTILE_TARS, ids=[h[0] for h in HOSTILE_TARS])
def test_hostile_tar_streams_get_one_short_line(tmp_path, name, make, message):
    archive = tmp_path / name
    archive.write_bytes(make())
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match=re.escape(message)) as raised:
        extract(archive, dest, plain_name="x", max_bytes=1 << 30, max_entries=100)
    text = str(raised.value)
    assert "\n" not in text and len(text) < 400, text
    assert not any(dest.iterdir())


def test_a_long_pax_path_is_shortened_in_the_message(tmp_path):
    archive = tmp_path / "longpath.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("../" + "x" * 20_000)
        tf.addfile(info, io.BytesIO(b""))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="unsafe path") as raised:
        extract(archive, dest, plain_name="x", max_bytes=1 << 20, max_entries=10)
    assert len(str(raised.value)) < 400
    assert "(20005 characters)" in str(raised.value)  # the repr, quotes included
