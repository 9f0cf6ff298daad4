"""Drawing detections into a picture: shared by ``POST /model/annotate`` and the command line.

Line width and font size follow the image's short side, so labels stay legible on a
thumbnail and on a 12-megapixel photo alike. Each label id always gets the same colour.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from core.model.detection import Detection

#: The formats :func:`encode` writes, with their media types.
MIMETYPES = {"jpeg": "image/jpeg", "png": "image/png"}
_GOLDEN = 0.618033988749895


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font at ``size``, loaded once: annotate runs it on every request."""
    return ImageFont.load_default(size=size)


def label_colour(label_id: int) -> tuple[int, int, int]:
    """A saturated colour fixed by ``label_id``; golden-ratio hue steps keep neighbouring ids apart."""
    hue = (label_id * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return round(r * 255), round(g * 255), round(b * 255)


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light colours, white on dark ones (relative luminance)."""
    r, g, b = background
    return (0, 0, 0) if 0.2126 * r + 0.7152 * g + 0.0722 * b > 140 else (255, 255, 255)


def draw_detections(image: Image.Image, detections: Sequence[Detection]) -> Image.Image:
    """A copy of ``image`` (upright RGB) with each detection's box, label and score drawn in.

    Boxes first, then labels, so no outline crosses a label; labels go lowest score first,
    so the best detection's label ends up on top.
    """
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    width, height = out.size
    short = min(width, height)
    line = max(1, round(short / 200))
    font = _font(max(12, round(short / 25)))
    pad = max(1, line)
    draw = ImageDraw.Draw(out)
    ranked = sorted(detections, key=lambda d: d.score)
    corners = [
        (
            round(d.box[1] * (width - 1)),
            round(d.box[0] * (height - 1)),
            round(d.box[3] * (width - 1)),
            round(d.box[2] * (height - 1)),
        )
        for d in ranked
    ]
    for det, box in zip(ranked, corners, strict=True):
        draw.rectangle(box, outline=label_colour(det.label_id), width=line)
    for det, (left, top, _, _) in zip(ranked, corners, strict=True):
        colour = label_colour(det.label_id)
        text = f"{det.label} {det.score:.2f}"
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        tag_w, tag_h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
        tag_left = max(0, min(left, width - tag_w))
        # Above the box when there is room, otherwise just inside its top edge.
        tag_top = top - tag_h if top - tag_h >= 0 else min(top, max(0, height - tag_h))
        draw.rectangle((tag_left, tag_top, tag_left + tag_w - 1, tag_top + tag_h - 1), fill=colour)
        draw.text((tag_left + pad - x0, tag_top + pad - y0), text, fill=_text_colour(colour), font=font)
    return out


def encode(image: Image.Image, fmt: str = "jpeg") -> bytes:
    """Encode ``image`` as ``jpeg`` or ``png``. No EXIF is written: the pixels are already upright."""
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, "JPEG", quality=90)
    elif fmt == "png":
        image.save(buffer, "PNG")
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(MIMETYPES)}")
    return buffer.getvalue()
