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
from core.model.structure import DEFAULT_MAX_JPEG_SCANS, check_jpeg_scans, check_png_complete

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
#: Pixel limit of the Python API and the CLI, and the default of the service's MAX_IMAGE_PIXELS.
DEFAULT_MAX_PIXELS = 40_000_000
_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image plus the facts the API reports about the original upload."""

    image: Image.Image
    format: str
    original_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

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
    try:
        # Pillow refuses a canvas over twice its own limit while opening; ours is checked next,
        # from the header, before any pixel is decoded.
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = img.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"image is too large: {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
            )
        fmt = img.format or "unknown"
        if fmt in ("JPEG", "MPO"):
            check_jpeg_scans(data, max_jpeg_scans)
        elif fmt == "PNG":
            check_png_complete(data)
        orientation = _orientation(img)
        if min_size and fmt in ("JPEG", "MPO"):  # MPO: multi-picture JPEG from cameras
            img.draft("RGB", _draft_request(img.size, min_size, orientation))
        img.load()  # the first frame of an animated GIF/WebP/TIFF: Pillow opens at frame 0
        upright = ImageOps.exif_transpose(img) if orientation != 1 else img
        rgb = to_rgb(upright)
    except (ImageTooLarge, InvalidInput):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image is too large: {exc}") from exc
    except UnidentifiedImageError:
        raise InvalidInput(
            "the uploaded file is not an image in a supported format (JPEG, PNG, GIF, BMP, WebP, TIFF)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on client bytes is the client's 400
        raise InvalidInput(f"the image is truncated or corrupt: {exc}") from None
    return DecodedImage(image=rgb, format=fmt, original_size=(width, height))


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
