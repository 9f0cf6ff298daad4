"""Drawing detections into pictures (core/annotate.py), without a model."""

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from core.model.annotate import draw_detections, encode, label_colour
from core.model.detection import Detection


def grey(w: int, h: int) -> Image.Image:
    return Image.new("RGB", (w, h), (128, 128, 128))


def test_colours_are_fixed_per_label_and_differ_between_labels():
    assert label_colour(18) == label_colour(18)
    colours = [label_colour(i) for i in range(1, 91)]
    assert len(set(colours)) == 90
    # Neighbouring ids (person 1 / bicycle 2, cat 17 / dog 18) are far apart, not shades of one hue.
    for a, b in itertools.pairwise(colours):
        assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 100, (a, b)


def test_drawing_returns_a_copy_of_the_same_size_with_the_box_outlined():
    img = grey(400, 300)
    det = Detection(label_id=18, label="dog", score=0.9, box=(0.5, 0.25, 0.9, 0.75))
    out = draw_detections(img, [det])
    assert out.size == img.size and out.mode == "RGB"
    assert img.getpixel((0, 0)) == (128, 128, 128) and np.all(np.asarray(img) == 128)  # input untouched
    left, top = round(0.25 * 399), round(0.5 * 299)
    assert out.getpixel((left, (top + round(0.9 * 299)) // 2)) == label_colour(18)  # left edge, halfway down
    assert out.getpixel((200, 20)) == (128, 128, 128)  # far from box and label


def test_label_goes_inside_the_box_when_the_box_touches_the_top():
    out = np.asarray(draw_detections(grey(300, 200), [Detection(1, "person", 0.5, (0.0, 0.1, 0.5, 0.5))]))
    changed_rows = np.flatnonzero(np.any(out != 128, axis=(1, 2)))
    assert changed_rows.min() == 0 and changed_rows.max() <= round(0.5 * 199)


def _label_height(size: int) -> int:
    """Height of the filled label tag drawn for a box in the lower half of a square image."""
    out = np.asarray(draw_detections(grey(size, size), [Detection(3, "car", 0.8, (0.5, 0.1, 0.9, 0.9))]))
    left = round(0.1 * (size - 1))
    column = out[: size // 2 - 1, left + 3]  # above the box's top edge, through the tag
    return int(np.count_nonzero(np.any(column != 128, axis=1)))


def test_line_and_text_grow_with_the_image():
    small, large = _label_height(120), _label_height(2400)
    assert 8 <= small < 40
    assert large > 5 * small


@pytest.mark.parametrize("size", [(1, 1), (5, 3)])
def test_tiny_images_do_not_break_drawing(size):
    out = draw_detections(grey(*size), [Detection(1, "person", 0.99, (0.0, 0.0, 1.0, 1.0))])
    assert out.size == size


@pytest.mark.parametrize("fmt, pil_format", [("jpeg", "JPEG"), ("png", "PNG")])
def test_encode_writes_the_asked_format(fmt, pil_format):
    data = encode(grey(40, 30), fmt)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == pil_format and img.size == (40, 30)


def test_encode_refuses_other_formats():
    with pytest.raises(ValueError, match="jpeg, png"):
        encode(grey(4, 4), "gif")
