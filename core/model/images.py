"""Turning untrusted upload bytes into an upright RGB image, safely and without per-pixel Python.

Order matters: the pixel count is checked from the header before any pixel is decoded, so a
small file that declares a huge canvas (a decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageTooLarge, InvalidInput

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
#: Pixel limit of the Python API and the CLI, and the default of the service's MAX_IMAGE_PIXELS.
DEFAULT_MAX_PIXELS = 40_000_000
_WHITE = (255, 255, 255)


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


def decode_image(data: bytes, max_pixels: int, min_size: tuple[int, int] | None = None) -> DecodedImage:
    """Decode ``data`` to upright RGB.

    ``min_size`` lets a JPEG decode at a reduced scale (Pillow's ``draft``) when it is much
    larger than the model input; the result is never smaller than ``min_size`` on either side.
    Raises :class:`InvalidInput` for anything that is not a complete image in a supported format,
    and :class:`ImageTooLarge` when the header declares more than ``max_pixels`` pixels.
    """
    if not data:
        raise InvalidInput("the uploaded image file is empty")
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
        orientation = _orientation(img)
        if min_size and fmt in ("JPEG", "MPO"):  # MPO: multi-picture JPEG from cameras
            img.draft("RGB", _draft_request(img.size, min_size, orientation))
        img.load()  # the first frame of an animated GIF/WebP/TIFF: Pillow opens at frame 0
        upright = ImageOps.exif_transpose(img) if orientation != 1 else img
        rgb = to_rgb(upright)
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


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is flattened onto white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(img)), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale a 16-bit or float grey image to 8 bits (vectorised)."""
    if arr.dtype.kind == "f":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return np.nan_to_num(scaled).astype(np.uint8)
    if arr.dtype.itemsize == 1:
        return arr.astype(np.uint8)
    peak = 65535 if arr.max(initial=0) <= 65535 else int(arr.max())
    return (arr.astype(np.float32) * (255.0 / peak)).round().astype(np.uint8)


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
