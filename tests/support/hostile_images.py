"""Hostile images written byte by byte, so no third-party file is committed: scan bombs and
structurally incomplete PNGs. Shared by the tests, the fuzzer and the benchmarks."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def progressive_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A valid progressive JPEG of smooth noise (it compresses like a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(1, height // 16), max(1, width // 16), 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(small).resize((width, height)).save(out, "JPEG", progressive=True, quality=20)
    return out.getvalue()


def with_empty_scans(jpeg: bytes, scans: int) -> bytes:
    """``jpeg`` with ``scans`` extra scan headers (DC of the first component, no data) before EOI.

    Every one is valid enough for libjpeg to walk all the image's blocks again: a hundred
    thousand of them in a 1 MB file keep a decoder busy for tens of seconds.
    """
    assert jpeg.endswith(b"\xff\xd9")
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + bytes([0, 0, 0])
    return jpeg[:-2] + sos * scans + b"\xff\xd9"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_rgb(width: int, height: int, rows: int | None = None, iend: bool = True) -> bytes:
    """An 8-bit RGB PNG of stripes whose image data holds ``rows`` rows (default: all of them)."""
    rows = height if rows is None else rows
    raw = b"".join(b"\x00" + bytes([(17 * r) % 256]) * (3 * width) for r in range(rows))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + (png_chunk(b"IEND", b"") if iend else b"")
    )


#: Pixel modes and formats that cost the most memory per pixel to decode (docs/reliability.md).
WIDE_CASES = ("F-TIFF", "I-TIFF", "I;16-PNG", "RGBA-PNG", "RGBA-TIFF", "RGB-PNG", "RGB-JPEG")


def compressed_image(case: str, pixels: int) -> tuple[bytes, int]:
    """A small, highly compressed upload of ``case`` ("MODE-FORMAT", e.g. "F-TIFF") with about
    ``pixels`` pixels (4:3); returns the bytes and the exact pixel count."""
    mode, fmt = case.split("-")
    width = int((pixels * 4 / 3) ** 0.5)
    height = pixels // width
    pattern = (np.arange(width, dtype=np.float32) % 7)[None, :] * np.ones((height, 1), np.float32)
    if mode == "F":
        img = Image.fromarray(pattern)
    elif mode == "I":
        img = Image.fromarray(pattern.astype(np.int32))
    elif mode == "I;16":
        img = Image.fromarray(pattern.astype(np.uint16))
    else:
        grey = Image.fromarray((pattern * 36).astype(np.uint8))
        img = grey.convert("RGB").convert("P") if mode == "P" else grey.convert(mode)
    options = {"TIFF": {"compression": "tiff_adobe_deflate"}, "JPEG": {"quality": 90}, "PNG": {"compress_level": 9}}
    out = io.BytesIO()
    img.save(out, fmt, **options.get(fmt, {}))
    return out.getvalue(), width * height


def tiff_with_overlapping_tags(tags: int, size: int) -> bytes:
    """An 8x8 grey TIFF whose first directory has ``tags`` extra tags that all point at the same
    ``size`` bytes: Pillow reads each one whole while opening (1,000 x 8 MB: 25-45 s)."""
    width = height = 8
    ifd_offset = 8 + size
    entries = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 3, 1, height),
        (279, 4, 1, width * height),
    ] + [(40_000 + k, 7, size, 8) for k in range(tags)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in sorted(entries))
    return b"II*\x00" + struct.pack("<I", ifd_offset) + bytes(size) + ifd + struct.pack("<I", 0)
