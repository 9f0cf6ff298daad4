"""Safe extraction of .tar(.gz/.bz2/.xz) and .zip model archives.

Every entry is checked before it is written, and one bad entry rejects the whole
archive (callers extract into a temp dir they discard on error): absolute paths,
``..`` components, links (symlinks, hardlinks, zip entries with symlink mode bits),
devices and FIFOs. The number of entries and the bytes
actually written (not the sizes the headers declare) are capped, which also stops
decompression bombs. Files get mode 0644 whatever the archive says. Zip is recognised
by its leading signature (an uncompressed tar may end with a zip member, which would
fool ``zipfile.is_zipfile``); a file that is neither tar nor zip is treated as a
single plain file (e.g. a bare ``.tflite``).

Written here rather than with ``tarfile``'s extraction filters (``filter="data"``): those cover
tar only, not zip; they cap neither the bytes written nor the number of entries; and they
extract whole archives, where the installer keeps only the pinned files.
"""

from __future__ import annotations

import functools
import gzip
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from core.artifacts.catalog import is_safe_relative
from core.artifacts.integrity import ArtifactError
from core.artifacts.tarscan import TarScanError, looks_like_tar, scan, shown

_CHUNK = 1 << 20


class UnsafeArchiveError(ArtifactError):
    """The archive is malformed, malicious, or larger than allowed."""


def extract(
    archive: Path,
    dest: Path,
    *,
    plain_name: str,
    keep: Callable[[str], bool] = lambda _: True,
    max_bytes: int,
    max_entries: int,
) -> list[str]:
    """Extract the entries of ``archive`` selected by ``keep`` into the existing dir ``dest``.

    ``plain_name`` names the file when ``archive`` is not an archive. Returns the
    relative POSIX paths of the files written.
    """
    budget = _Budget(max_bytes, max_entries)
    try:
        with open(archive, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        if is_zip:
            with zipfile.ZipFile(archive) as zf:
                return _extract(_zip_entries(zf), dest, keep, budget)
        if looks_like_tar(archive):
            scan(archive, max_bytes, max_entries)  # bounded: tarfile trusts meta headers' sizes
            with tarfile.open(archive, "r:*") as tf:
                return _extract(_tar_entries(tf), dest, keep, budget)
    except TarScanError as exc:
        raise UnsafeArchiveError(f"unsafe archive {shown(archive.name)}: {exc}") from None
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        zlib.error,
        lzma.LZMAError,
        gzip.BadGzipFile,
        EOFError,
        RuntimeError,
        NotImplementedError,
        ValueError,
    ) as exc:
        raise UnsafeArchiveError(f"corrupt or unsupported archive {shown(archive.name)}: {shown(str(exc))}") from None
    if not is_safe_relative(plain_name) or "/" in plain_name:
        raise UnsafeArchiveError(f"cannot name a plain file {shown(plain_name)}")
    with open(archive, "rb") as src:
        return _extract(iter([(plain_name, lambda: src)]), dest, keep, budget)


class _Budget:
    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self.bytes_left, self.entries_left = max_bytes, max_entries
        self.max_bytes, self.max_entries = max_bytes, max_entries

    def entry(self) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise UnsafeArchiveError(f"archive has more than {self.max_entries} entries")

    def spend(self, n: int) -> None:
        self.bytes_left -= n
        if self.bytes_left < 0:
            raise UnsafeArchiveError(f"archive content exceeds the {self.max_bytes}-byte extraction limit")


# An entry is (name, opener of its data), the opener None for a directory; other kinds were rejected.
_Entry = tuple[str, Callable[[], IO[bytes] | None] | None]


def _tar_entries(tf: tarfile.TarFile) -> Iterator[_Entry]:
    for m in tf:
        if m.issym() or m.islnk():
            raise UnsafeArchiveError(f"archive entry {shown(m.name)} is a link to {shown(m.linkname)}")
        if m.isdir():
            yield m.name, None
        elif m.isreg():
            yield m.name, functools.partial(tf.extractfile, m)
        else:
            raise UnsafeArchiveError(f"archive entry {shown(m.name)} is a device, FIFO or other special file")


def _zip_entries(zf: zipfile.ZipFile) -> Iterator[_Entry]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(f"archive entry {shown(info.filename)} is a symlink")
        if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"archive entry {shown(info.filename)} is a special file")
        if info.is_dir():
            yield info.filename, None
        else:
            yield info.filename, functools.partial(zf.open, info)


def _extract(entries: Iterator[_Entry], dest: Path, keep: Callable[[str], bool], budget: _Budget) -> list[str]:
    written: list[str] = []
    for raw_name, open_data in entries:
        budget.entry()
        name = _clean(raw_name, is_dir=open_data is None)
        if open_data is None or not keep(name):
            continue
        target = dest / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            out = open(target, "xb")
        except (FileExistsError, IsADirectoryError, NotADirectoryError):
            raise UnsafeArchiveError(f"archive entry {shown(raw_name)} clashes with an earlier entry") from None
        data = open_data()
        if data is None:  # tarfile's answer for a member without data; the kinds were checked above
            out.close()
            raise UnsafeArchiveError(f"archive entry {shown(raw_name)} has no data")
        with data as src, out:
            while chunk := src.read(_CHUNK):
                budget.spend(len(chunk))
                out.write(chunk)
        target.chmod(0o644)
        written.append(name)
    return written


def _clean(name: str, is_dir: bool) -> str:
    """Entry name as a safe relative POSIX path (leading ``./`` allowed; ``""`` for the root dir)."""
    stripped = name.rstrip("/") if is_dir else name
    while stripped.startswith("./"):
        stripped = stripped[2:]
    if is_dir and stripped in ("", "."):
        return ""
    if not is_safe_relative(stripped):
        raise UnsafeArchiveError(f"archive entry {shown(name)} has an absolute or unsafe path")
    return stripped
