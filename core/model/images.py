"""Turning untrusted upload bytes into an upright RGB image, safely and without per-pixel Python.

Order matters: the pixel count is checked from the header before any pixel is decoded, so a
small file that declares a huge canvas (a decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import ImageTooLarge, InvalidInput
from core.model.budget import cost_bytes
from core.model.structure import (
    DEFAULT_MAX_JPEG_SCANS,
    check_jpeg_scans,
    check_png_complete,
    check_tiff_tags,
)

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
#: Pixel limit of the Python API and the CLI, and the default of the service's MAX_IMAGE_PIXELS.
DEFAULT_MAX_PIXELS = 40_000_000
_WHITE = (255, 255, 255)
#: EXIF orientation -> the transpose that makes the stored pixels upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image plus the facts the API reports about the original upload."""

    image: Image.Image
    format: str
    #: (width, height) as stored in the file, before the EXIF orientation is applied.
    original_size: tuple[int, int]
    #: The EXIF orientation turned the stored pixels by 90 degrees (width and height swap).
    quarter_turn: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) of the upload as a viewer shows it: full resolution, EXIF orientation applied.
        Normalised boxes times this size are pixels in the uploaded picture."""
        width, height = self.original_size
        return (height, width) if self.quarter_turn else (width, height)

    def to_array(self) -> np.ndarray:
        """``uint8`` array of shape ``(H, W, 3)``; one C-level copy, no Python loop."""
        return np.asarray(self.image, dtype=np.uint8)


def decode_image(
    data: bytes,
    max_pixels: int,
    min_size: tuple[int, int] | None = None,
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS,
) -> DecodedImage:
    """Decode ``data`` to upright RGB.

    ``min_size`` lets a JPEG decode at a reduced scale (Pillow's ``draft``) when it is much
    larger than the model input; the result is never smaller than ``min_size`` on either side.
    Raises :class:`InvalidInput` for anything that is not a complete image in a supported format,
    and :class:`ImageTooLarge` when the header declares more than ``max_pixels`` pixels. The
    structure is checked before decoding too (:mod:`core.model.structure`): a JPEG with more
    than ``max_jpeg_scans`` scans, or an incomplete PNG, is refused.
    """
    if not data:
        raise InvalidInput("the uploaded image file is empty")
    check_tiff_tags(data)  # before Image.open, which reads every tag
    try:
        # The pixel count is checked from the header, before any pixel is decoded.
        declared = _webp_size(data)  # Pillow's WebP plugin allocates the whole canvas while opening
        if declared and declared[0] * declared[1] > max_pixels:
            raise _too_large(declared, max_pixels)
        try:
            img = Image.open(io.BytesIO(data), formats=FORMATS)
        except Image.DecompressionBombError:
            # Over twice Pillow's own limit (any format): say it with our limit, like every other size.
            size = _declared_size(data)
            if size is None:
                raise ImageTooLarge(
                    f"image is too large: more than {max_pixels} pixels; the limit is {max_pixels}"
                ) from None
            # Pillow opens nothing over twice its limit, even under a higher MAX_IMAGE_PIXELS.
            pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
            raise _too_large(size, max_pixels if size[0] * size[1] > max_pixels else pillow_limit) from None
        width, height = img.size
        if width * height > max_pixels:
            raise _too_large((width, height), max_pixels)
        fmt = img.format or "unknown"
        if fmt in ("JPEG", "MPO"):
            check_jpeg_scans(data, max_jpeg_scans)
        elif fmt == "PNG":
            check_png_complete(data)
        exif = img.info.get("exif")
        if isinstance(exif, bytes):
            check_tiff_tags(exif.removeprefix(b"Exif\x00\x00"), "EXIF block")
        orientation = _orientation(img)
        if min_size and fmt in ("JPEG", "MPO"):  # MPO: multi-picture JPEG from cameras
            img.draft("RGB", _draft_request(img.size, min_size, orientation))
        img.load()  # the first frame of an animated GIF/WebP/TIFF: Pillow opens at frame 0
        orientation = _orientation(img)  # again: Pillow applies a TIFF's own orientation while loading
        rgb = to_rgb(img)
        del img  # the native pixels (up to 4 bytes each, more while converting) go before any copy
        if orientation in _TRANSPOSE:
            rgb = rgb.transpose(_TRANSPOSE[orientation])
    except (ImageTooLarge, InvalidInput):
        raise
    except UnidentifiedImageError:
        raise InvalidInput(
            "the uploaded file is not an image in a supported format (JPEG, PNG, GIF, BMP, WebP, TIFF)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on client bytes is the client's 400
        raise InvalidInput(f"the image is truncated or corrupt: {exc}") from None
    return DecodedImage(image=rgb, format=fmt, original_size=(width, height), quarter_turn=orientation in (5, 6, 7, 8))


def _too_large(size: tuple[int, int], max_pixels: int) -> ImageTooLarge:
    """The one message for an image over the pixel limit, whatever its format."""
    width, height = size
    return ImageTooLarge(f"image is too large: {width}x{height} = {width * height} pixels; the limit is {max_pixels}")


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP header declares (VP8X, lossless VP8L or lossy VP8), else None."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    kind = data[12:16]
    if kind == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 ":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size ``data``'s header declares, read by the format's own Pillow plugin without
    Pillow's decompression-bomb check (which :func:`Image.open` applies; ours replaces it).
    Nothing is decoded. None when no supported plugin accepts the header."""
    for fmt in FORMATS:
        size = _size_by_plugin(fmt, data)
        if size is not None:
            return size
    return None


def _size_by_plugin(fmt: str, data: bytes) -> tuple[int, int] | None:
    factory, accept = Image.OPEN[fmt]
    try:
        accepted = accept is None or accept(data[:16])
        if not accepted or isinstance(accepted, str):  # a str is Pillow's "not quite" warning
            return None
        with factory(io.BytesIO(data), "") as img:
            return img.size
    except Exception:  # noqa: BLE001 - a plugin that cannot read this header: not this format
        return None


def decode_cost(data: bytes, max_pixels: int, min_size: tuple[int, int] | None = None) -> int:
    """Bytes that decoding ``data`` as :func:`decode_image` would hold at its peak, from the
    header alone (see :mod:`core.model.budget`); 0 when decoding would be refused before any
    pixel is decoded (not an image, too many pixels), so such requests wait for nothing."""
    try:
        check_tiff_tags(data)
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        if img.width * img.height > max_pixels:
            return 0
        if min_size and img.format in ("JPEG", "MPO"):
            exif = img.info.get("exif")
            if isinstance(exif, bytes):
                check_tiff_tags(exif.removeprefix(b"Exif\x00\x00"), "EXIF block")
            img.draft("RGB", _draft_request(img.size, min_size, _orientation(img)))
        return cost_bytes(img.width * img.height, img.mode)
    except Exception:  # noqa: BLE001 - decode_image gives the client the precise error
        return 0


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is flattened onto white.

    Wide modes (16/32-bit integer, float) are scaled a band of rows at a time, so the extra
    memory is one 8-bit copy plus a band, not several full-size float arrays.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _WIDE_GREY:
        return _grey_to_uint8(img).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I", "F")
#: Pixels scaled at once when narrowing a wide grey image (16 MB of float32).
_BAND_PIXELS = 1 << 22


def _grey_to_uint8(img: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit or float grey image to 8 bits ("L"), band by band (vectorised).

    Float images are stretched from their minimum to their maximum (NaN becomes 0); integer
    images are scaled from the 16-bit range, or from their maximum if it is larger.
    """
    width, height = img.size
    rows = max(1, _BAND_PIXELS // max(1, width))
    bands = [(top, min(height, top + rows)) for top in range(0, height, rows)]

    def band(top: int, bottom: int) -> np.ndarray:
        return np.asarray(img.crop((0, top, width, bottom)))

    out = np.empty((height, width), dtype=np.uint8)
    if img.mode == "F":
        lo, hi = np.inf, -np.inf
        for top, bottom in bands:
            values = band(top, bottom)
            finite = values[np.isfinite(values)]
            if finite.size:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        for top, bottom in bands:
            values = band(top, bottom).astype(np.float32, copy=True)
            values -= np.float32(lo if scale else 0.0)
            values *= np.float32(scale)
            np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
            np.clip(values, 0, 255, out=values)
            out[top:bottom] = values.astype(np.uint8)
        return Image.fromarray(out, "L")
    top_value = max((int(band(t, b).max(initial=0)) for t, b in bands), default=0)
    peak = 65535 if top_value <= 65535 else top_value
    for top, bottom in bands:
        values = band(top, bottom).astype(np.float32)
        values *= np.float32(255.0 / peak)
        out[top:bottom] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block, whatever Pillow raises for it, must not reject the photo
        return 1


def _draft_request(size: tuple[int, int], min_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The draft size in stored (pre-rotation) orientation that keeps the upright image >= ``min_size``."""
    want_w, want_h = min_size
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: stored width becomes upright height
        want_w, want_h = want_h, want_w
    return (min(want_w, size[0]), min(want_h, size[1]))
