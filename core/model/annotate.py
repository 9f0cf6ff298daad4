"""Drawing detections into a picture: shared by ``POST /model/annotate`` and the command line.

Line width and font size follow the image's short side, so labels stay legible on a
thumbnail and on a 12-megapixel photo alike. Each label id always gets the same colour.

Labels never overlap each other and never leave the image: :func:`place_labels` puts them one by
one, best score first, at the first free spot of a fixed list of candidates around the box (above
its top-left corner, inside it, below it, the right-hand corners, then further down the box and
finally the nearest free spot anywhere). A label that fits nowhere (a tiny image crowded with
detections) is left out; its box is still drawn. The web app's overlay follows the same rule.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.model.detection import Detection

#: The formats :func:`encode` writes, with their media types.
MIMETYPES = {"jpeg": "image/jpeg", "png": "image/png"}
_GOLDEN = 0.618033988749895

#: ``(left, top, right, bottom)`` in pixels; right and bottom are exclusive, so a rectangle at
#: ``(0, 0, w, h)`` covers exactly ``w`` x ``h`` pixels and two rectangles touch without overlapping.
Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class Label:
    """A detection's label as drawn: its text and the rectangle of its filled tag."""

    detection: Detection
    text: str
    rect: Rect


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


def intersects(a: Rect, b: Rect) -> bool:
    """True when the rectangles share at least one pixel (touching edges do not)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], image_size: tuple[int, int]
) -> list[Rect | None]:
    """Where each label goes: ``sizes[i]`` is the ``(width, height)`` of the label of ``boxes[i]``.

    Pure geometry. Labels are placed in the given order (pass them best first): each takes the
    first candidate, clamped into the image, that overlaps no label placed before it. The result
    is in the same order as ``boxes``; ``None`` for a label that fits nowhere. Every rectangle
    returned lies inside ``image_size`` and no two of them intersect.
    """
    width, height = image_size
    placed: list[Rect] = []
    out: list[Rect | None] = []
    failed: list[tuple[int, int]] = []  # sizes that fitted nowhere: nothing as large fits later either
    for box, (w, h) in zip(boxes, sizes, strict=True):
        rect = None
        if 0 < w <= width and 0 < h <= height and not any(w >= fw and h >= fh for fw, fh in failed):
            rect = _first_free(box, w, h, width, height, placed)
            if rect is None:
                failed.append((w, h))
        if rect is not None:
            placed.append(rect)
        out.append(rect)
    return out


def _first_free(box: Rect, w: int, h: int, width: int, height: int, placed: Sequence[Rect]) -> Rect | None:
    left, top, right, bottom = box

    def at(x: int, y: int) -> Rect:
        x, y = max(0, min(x, width - w)), max(0, min(y, height - h))
        return (x, y, x + w, y + h)

    def free(rect: Rect) -> bool:
        return not any(intersects(rect, other) for other in placed)

    # Around the box first: above its top-left corner (MAX's place), just inside it, below it,
    # inside its bottom, then the same on the right-hand side.
    preferred = [
        at(left, top - h),
        at(left, top),
        at(left, bottom),
        at(left, bottom - h),
        at(right - w, top - h),
        at(right - w, top),
        at(right - w, bottom),
        at(right - w, bottom - h),
    ]
    # Then further down the box, one label height at a time, on its left and right edges.
    preferred += [at(x, y) for y in range(top + h, bottom - h, h) for x in (left, right - w)]
    for rect in preferred:
        if free(rect):
            return rect
    # Last: the free spot nearest the box's top-left corner. A label that touches no placed label
    # can slide until it does (or hits the image's edge), so these edges are the only candidates.
    # Up to 100 detections make ~40,000 spots: checked at once with numpy, not one by one.
    xs = np.array([0, width - w, left, right - w, *(r[2] for r in placed), *(r[0] - w for r in placed)])
    ys = np.array([0, height - h, top - h, top, *(r[3] for r in placed), *(r[1] - h for r in placed)])
    lefts = np.clip(np.repeat(xs, len(ys)), 0, width - w)
    tops = np.clip(np.tile(ys, len(xs)), 0, height - h)
    taken = np.asarray(placed).reshape(-1, 4)
    clash = (
        (lefts[:, None] < taken[:, 2])
        & (taken[:, 0] < lefts[:, None] + w)
        & (tops[:, None] < taken[:, 3])
        & (taken[:, 1] < tops[:, None] + h)
    )
    open_spots = np.flatnonzero(~clash.any(axis=1))
    if open_spots.size == 0:
        return None
    distance = np.abs(lefts[open_spots] - left) + np.abs(tops[open_spots] - (top - h))
    best = open_spots[np.lexsort((tops[open_spots], lefts[open_spots], distance))[0]]
    x, y = int(lefts[best]), int(tops[best])
    return (x, y, x + w, y + h)


def _style(size: tuple[int, int]) -> tuple[int, int, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """Line width, label padding and font for an image of ``size``: they grow with its short side."""
    short = min(size)
    line = max(1, round(short / 200))
    return line, max(1, line), _font(max(12, round(short / 25)))


def _pixel_box(det: Detection, size: tuple[int, int]) -> Rect:
    """The detection's box in pixels, as its outline is drawn (corners inclusive)."""
    width, height = size
    ymin, xmin, ymax, xmax = det.box
    return (
        round(xmin * (width - 1)),
        round(ymin * (height - 1)),
        round(xmax * (width - 1)),
        round(ymax * (height - 1)),
    )


def layout_labels(size: tuple[int, int], detections: Sequence[Detection]) -> list[Label]:
    """The labels :func:`draw_detections` draws into an image of ``size``, best score first.

    A detection whose label fits nowhere has no entry (its box is still drawn).
    """
    _, pad, font = _style(size)
    ranked = sorted(detections, key=lambda d: -d.score)
    texts = [f"{d.label} {d.score:.2f}" for d in ranked]
    sizes = []
    for text in texts:
        x0, y0, x1, y1 = font.getbbox(text)
        sizes.append((int(x1 - x0) + 2 * pad, int(y1 - y0) + 2 * pad))
    rects = place_labels([_pixel_box(d, size) for d in ranked], sizes, size)
    return [Label(d, t, r) for d, t, r in zip(ranked, texts, rects, strict=True) if r is not None]


def draw_detections(image: Image.Image, detections: Sequence[Detection]) -> Image.Image:
    """A copy of ``image`` (upright RGB) with each detection's box, label and score drawn in.

    Boxes first, then labels (placed by :func:`layout_labels`), so no outline crosses a label.
    """
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    line, pad, font = _style(out.size)
    draw = ImageDraw.Draw(out)
    for det in sorted(detections, key=lambda d: d.score):
        draw.rectangle(_pixel_box(det, out.size), outline=label_colour(det.label_id), width=line)
    for label in layout_labels(out.size, detections):
        colour = label_colour(label.detection.label_id)
        left, top, right, bottom = label.rect
        draw.rectangle((left, top, right - 1, bottom - 1), fill=colour)
        x0, y0, _, _ = font.getbbox(label.text)
        draw.text((left + pad - x0, top + pad - y0), label.text, fill=_text_colour(colour), font=font)
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
