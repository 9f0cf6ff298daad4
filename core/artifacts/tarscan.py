"""A bounded first pass over a tar stream, before ``tarfile`` parses it.

``tarfile`` trusts the sizes in meta headers: a GNU long-name (``L``/``K``) member is read
into memory whole (a 4.7 MB .tar.gz declaring a 1 GiB name took 4.25 GB of RSS, and the
name then went into the error message), and on Python < 3.11.10 / 3.12.6 a pax header with
tens of thousands of digits in a record length takes quadratic time (CVE-2024-6232). This
pass reads the 512-byte headers through the decompressor, skips file data in 1 MiB reads,
and refuses, with one short line:

* meta members (GNU long names, pax headers) over :data:`MAX_META_BYTES`;
* pax records that are not ``<length> <key>=<value>\\n`` with a length of at most 20 digits;
* negative or unparsable sizes, and declared sizes that add up past the extraction limit;
* a decompressor error (corrupt gzip, bzip2 or LZMA stream).

It keeps at most one meta member in memory, so its own memory is bounded by that cap.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import zlib
from pathlib import Path
from typing import IO, cast

from core.errors import ArtifactError

#: Largest GNU long name/link or pax header accepted; real ones are a few hundred bytes.
MAX_META_BYTES = 64 * 1024
#: Longest text of a name or an error shown in a message.
MAX_SHOWN = 200
_BLOCK = 512
_CHUNK = 1 << 20
_TRAILER = 1 << 20
_META_TYPES = {b"L": "GNU long name", b"K": "GNU long link", b"x": "pax header", b"g": "pax global header"}
_PAX_LENGTH = re.compile(rb"(\d{1,20}) ")


class TarScanError(ArtifactError):
    """The tar stream is malformed or hostile; the message is one short line."""


def shown(text: object) -> str:
    """``text`` for a one-line message: repr'd (no newlines or control characters), at most
    :data:`MAX_SHOWN` characters."""
    out = repr(text) if isinstance(text, str | bytes) else str(text)
    out = out.replace("\n", " ").replace("\r", " ")
    return out if len(out) <= MAX_SHOWN else f"{out[: MAX_SHOWN - 3]}... ({len(out)} characters)"


def open_stream(path: Path) -> IO[bytes]:
    """``path`` opened through the decompressor its magic bytes name (plain if none)."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def looks_like_tar(path: Path) -> bool:
    """True if the first 512 bytes, decompressed, are a tar header with a valid checksum.

    A file whose magic bytes promise a compressed stream that then fails to decompress is
    corrupt, not a plain file: :class:`TarScanError`.
    """
    try:
        with open_stream(path) as stream:
            return _checksum_ok(stream.read(_BLOCK))
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        raise TarScanError(f"corrupt compressed stream in {shown(path.name)}: {shown(str(exc))}") from None


def scan(path: Path, max_bytes: int, max_entries: int) -> None:
    """Walk every header of the tar at ``path``; raise :class:`TarScanError` on anything hostile."""
    try:
        with open_stream(path) as stream:
            declared = _walk(stream, max_bytes, max_entries)
            # Read to the end, so the decompressor checks the stream's CRC: the padding to whole
            # records and at most the unspent budget may follow the last member.
            _skip(stream, max(0, max_bytes - declared) + _TRAILER, to_eof=True)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise TarScanError(f"corrupt compressed stream in {shown(path.name)}: {shown(str(exc))}") from None


def _walk(stream: IO[bytes], max_bytes: int, max_entries: int) -> int:
    """Check every header; returns the bytes the members declare."""
    declared, entries = 0, 0
    while True:
        header = stream.read(_BLOCK)
        if len(header) < _BLOCK or header == bytes(_BLOCK) or not _checksum_ok(header):
            return declared  # end of archive, as tarfile sees it (it reports a bad first header itself)
        kind = header[156:157]
        size = _size(header)
        entries += 1
        if entries > max_entries * 2 + 2:  # a meta member may precede each entry
            raise TarScanError(f"archive has more than {max_entries} entries")
        if kind in _META_TYPES:
            if size > MAX_META_BYTES:
                raise TarScanError(f"archive has a {_META_TYPES[kind]} of {size} bytes; the limit is {MAX_META_BYTES}")
            data = _read_exact(stream, _padded(size))[:size]
            if kind in (b"x", b"g"):
                _check_pax(data)
            continue
        declared += size
        if declared > max_bytes:
            raise TarScanError(f"archive content exceeds the {max_bytes}-byte extraction limit (declared sizes)")
        if kind not in (b"1", b"2", b"3", b"4", b"5", b"6"):  # links, devices, dirs, FIFOs carry no data
            _skip(stream, _padded(size))


def _checksum_ok(header: bytes) -> bool:
    """tarfile's test: the stored checksum equals the header's byte sum (unsigned or signed)."""
    if len(header) < _BLOCK:
        return False
    text = header[148:156].replace(b"\x00", b" ").strip()
    if not text or len(text) > 8 or not all(c in b"01234567" for c in text):
        return False
    rest = header[:148] + b" " * 8 + header[156:]
    unsigned = sum(rest)
    signed = unsigned - 256 * sum(1 for b in rest if b > 127)
    return int(text, 8) in (unsigned, signed)


def _size(header: bytes) -> int:
    raw = header[124:136]
    if raw[0] in (0x80, 0xFF):  # GNU base-256; 0xFF marks a negative number
        if raw[0] == 0xFF:
            raise TarScanError("archive member has a negative size")
        return int.from_bytes(raw[1:], "big")
    text = raw.replace(b"\x00", b" ").strip()
    if not text:
        return 0
    if not all(c in b"01234567" for c in text):
        raise TarScanError(f"archive member has an unreadable size {shown(text)}")
    return int(text, 8)


def _padded(size: int) -> int:
    return (size + _BLOCK - 1) // _BLOCK * _BLOCK


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) < n:
        raise TarScanError("archive ends inside a member")
    return data


def _skip(stream: IO[bytes], n: int, to_eof: bool = False) -> None:
    """Read and drop ``n`` bytes; with ``to_eof``, the rest of the stream, which must be shorter."""
    while n > 0:
        got = len(stream.read(min(n, _CHUNK)))
        if got == 0:
            if to_eof:
                return
            raise TarScanError("archive ends inside a member")
        n -= got
    if to_eof:
        raise TarScanError("archive has more data after its end than the extraction limit")


def _check_pax(data: bytes) -> None:
    """Each record must be ``<length> <key>=<value>\\n`` with a short length that fits."""
    pos = 0
    while pos < len(data) and data[pos] != 0:
        match = _PAX_LENGTH.match(data, pos)
        if match is None:
            raise TarScanError("archive has a malformed pax header (a record length is missing or too long)")
        length = int(match.group(1))
        end = pos + length
        if length <= len(match.group(0)) or end > len(data) or data[end - 1 : end] != b"\n":
            raise TarScanError("archive has a malformed pax header (a record length does not fit)")
        if b"=" not in data[match.end() : end]:
            raise TarScanError("archive has a malformed pax header (a record has no '=')")
        pos = end
