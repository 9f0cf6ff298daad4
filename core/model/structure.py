"""Cheap structural checks of upload bytes, run before any pixel is decoded.

They walk the container (JPEG markers, PNG chunks) without decoding pixels, so a file whose
structure would make the decoder slow, or that is incomplete, is refused in milliseconds:

* A progressive JPEG may hold any number of scans, and libjpeg revisits every coefficient
  block of the image for each one, even an empty scan. About a thousand empty scans make a
  12 MP JPEG take seconds instead of a quarter of a second (docs/reliability.md, "Decoding
  limits"); real encoders write about ten. :func:`count_jpeg_scans` counts them.
* Pillow decodes a PNG whose compressed data holds fewer rows than the header declares, or
  that has no ``IEND`` chunk, without complaint. :func:`check_png_complete` refuses both.
* Pillow reads every tag of a TIFF directory (a TIFF file, or the EXIF block of any format)
  whole, in Python, while opening: an 8 MB TIFF whose thousand tags all point at the same 8 MB
  kept ``Image.open`` busy for 25-45 s. :func:`check_tiff_tags` adds up what the tags declare.
"""

from __future__ import annotations

import re
import struct
import zlib

from core.errors import InvalidInput

#: Scans a progressive JPEG may have: libjpeg's own encoders write 10, mozjpeg about 10 to 12.
DEFAULT_MAX_JPEG_SCANS = 100

#: A marker inside entropy-coded data: 0xFF not followed by a stuffed 0x00, a restart marker
#: (which belongs to the scan) or another 0xFF (a fill byte before the real marker).
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length field
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_STEP = 1 << 20
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Bytes per value of each TIFF field type (unknown types count as 1).
_TIFF_TYPE_SIZE = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}
#: Tags whose value is the offset of another directory Pillow may read (EXIF, GPS, interop).
_TIFF_SUB_IFDS = (34665, 34853, 40965)
#: Tag data a directory may declare beyond the size of the bytes it lives in.
_TIFF_SLACK = 1 << 20


def count_jpeg_scans(data: bytes, limit: int) -> int:
    """The number of scans (SOS markers) in the JPEG ``data``, counting stops past ``limit``.

    Walks segment lengths and skips entropy-coded data with one C-level search per marker, so
    it reads the file once and never decodes. Malformed structure is left to the decoder.
    """
    scans, pos, end = 0, 2, len(data)
    while pos + 1 < end and scans <= limit:
        if data[pos] != 0xFF:
            return scans  # not at a marker: the decoder will say what is wrong
        while pos + 1 < end and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 1 >= end:
            break
        marker = data[pos + 1]
        pos += 2
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            continue
        if pos + 2 > end:
            break
        (length,) = struct.unpack_from(">H", data, pos)
        pos += length
        if marker == _SOS:
            scans += 1
            found = _MARKER_IN_SCAN.search(data, pos)
            if found is None:
                break
            pos = found.start()
    return scans


def check_jpeg_scans(data: bytes, limit: int) -> None:
    """Refuse a JPEG with more than ``limit`` scans, before libjpeg spends time on them."""
    scans = count_jpeg_scans(data, limit)
    if scans > limit:
        raise InvalidInput(
            f"the JPEG has more than {limit} scans (progressive passes), the limit (MAX_JPEG_SCANS); "
            "re-save it as a baseline or ordinary progressive JPEG"
        )


def check_png_complete(data: bytes) -> None:
    """Refuse a PNG that lacks ``IEND`` or whose image data inflates to fewer bytes than its
    header declares (rows missing). Inflates the data once, a megabyte at a time, keeping
    nothing; the count stops at the declared size."""
    if not data.startswith(_PNG_SIGNATURE):
        return
    pos, end = len(_PNG_SIGNATURE), len(data)
    header: bytes | None = None
    idat: list[memoryview] = []
    view = memoryview(data)
    seen_iend = False
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        body_start = pos + 8
        pos = body_start + length + 4  # data and CRC
        if pos > end:
            raise InvalidInput(f"the image is truncated or corrupt: the PNG chunk {_name(kind)} is cut short")
        if kind == b"IHDR" and header is None:
            header = data[body_start : body_start + length]
        elif kind == b"IDAT":
            idat.append(view[body_start : body_start + length])
        elif kind == b"IEND":
            seen_iend = True
            break
    if not seen_iend:
        raise InvalidInput("the image is truncated or corrupt: the PNG has no IEND chunk (the file is incomplete)")
    if header is None or len(header) < 13 or not idat:
        return  # Pillow reports these itself
    expected = _png_raw_size(header)
    if expected is None:
        return
    got = _inflated_size(idat, expected)
    if got < expected:
        raise InvalidInput(
            f"the image is truncated or corrupt: the PNG image data holds {got} of the {expected} bytes "
            "its header declares (rows are missing)"
        )


def _name(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))


def _png_raw_size(header: bytes) -> int | None:
    """Bytes of filtered scanlines the IHDR declares (Adam7 passes included)."""
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
    channels = _PNG_CHANNELS.get(color)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        return None
    bits = channels * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if interlace == 0:
        return rows(width, height)
    return sum(
        rows((width - x0 + dx - 1) // dx if width > x0 else 0, (height - y0 + dy - 1) // dy if height > y0 else 0)
        for x0, y0, dx, dy in _ADAM7
    )


def _inflated_size(parts: list[memoryview], want: int) -> int:
    """How many bytes the zlib stream split over ``parts`` inflates to, counting up to ``want``."""
    inflater = zlib.decompressobj()
    got = 0
    try:
        for part in parts:
            pending: bytes | memoryview = part
            while pending and got < want:
                got += len(inflater.decompress(pending, _INFLATE_STEP))
                pending = inflater.unconsumed_tail
            if got >= want or inflater.eof:
                break
    except zlib.error:
        return want  # corrupt data: the decoder gives the precise error
    return got


def is_tiff(data: bytes) -> bool:
    return data[:4] in _TIFF_MAGIC


def check_tiff_tags(data: bytes, what: str = "TIFF") -> None:
    """Refuse a TIFF structure (a TIFF file, or an EXIF block) whose first directory and its
    EXIF/GPS/interop sub-directories declare more out-of-line tag data than twice its own size
    plus 1 MiB: their values overlap, which only a file built to make the parser work does."""
    if not is_tiff(data):
        return
    endian = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    count_fmt, entry_size, inline = ("Q", 20, 8) if big else ("H", 12, 4)
    value_fmt = "Q" if big else "I"
    try:
        (first,) = struct.unpack_from(endian + value_fmt, data, 8 if big else 4)
    except struct.error:
        return
    total, pending = 0, [first]
    seen: set[int] = set()
    limit = 2 * len(data) + _TIFF_SLACK
    while pending and len(seen) < 8:
        offset = pending.pop()
        if offset in seen or offset + 8 > len(data):
            continue
        seen.add(offset)
        (entries,) = struct.unpack_from(endian + count_fmt, data, offset)
        base = offset + struct.calcsize(count_fmt)
        for i in range(min(entries, (len(data) - base) // entry_size)):
            tag, kind = struct.unpack_from(endian + "HH", data, base + i * entry_size)
            count, value = struct.unpack_from(endian + value_fmt * 2, data, base + i * entry_size + 4)
            size = count * _TIFF_TYPE_SIZE.get(kind, 1)
            if size > inline:
                total += size
            if tag in _TIFF_SUB_IFDS:
                pending.append(value)
            if total > limit:
                raise InvalidInput(
                    f"the {what} is malformed: its tags refer to more than {limit} bytes of data, "
                    f"over twice its own {len(data)} bytes"
                )
