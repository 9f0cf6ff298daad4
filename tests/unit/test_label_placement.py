"""Label placement (core/model/annotate.py): labels never overlap each other and never leave the image.

Checked geometrically on :func:`place_labels` / :func:`layout_labels`, whose rectangles are exactly
the tags :func:`draw_detections` fills, on synthetic crowded, edge and tiny cases; the real photos
through the real model are in tests/integration/test_annotate.py.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from PIL import Image

from core.model.annotate import Rect, draw_detections, intersects, label_colour, layout_labels, place_labels
from core.model.detection import Detection


def assert_valid(rects: list[Rect], size: tuple[int, int]) -> None:
    """No two rectangles intersect, and each lies inside an image of ``size``."""
    width, height = size
    for rect in rects:
        left, top, right, bottom = rect
        assert 0 <= left < right <= width and 0 <= top < bottom <= height, (rect, size)
    for a, b in itertools.combinations(rects, 2):
        assert not intersects(a, b), (a, b)


def test_intersects_counts_shared_pixels_only():
    assert intersects((0, 0, 10, 10), (5, 5, 15, 15))
    assert not intersects((0, 0, 10, 10), (10, 0, 20, 10))  # touching edges share no pixel
    assert not intersects((0, 0, 10, 10), (0, 10, 10, 20))


def test_identical_boxes_get_labels_one_under_the_other():
    """MAX drew "person 0.62" on top of "dog 0.80" when two detections share a box."""
    box = (50, 100, 250, 300)
    first, second = place_labels([box, box], [(80, 20), (90, 20)], (400, 400))
    assert first == (50, 80, 130, 100)  # above the box's top-left corner
    assert second == (50, 100, 140, 120)  # just inside the box, under the first


def test_labels_stay_inside_at_every_edge():
    size = (200, 100)
    boxes = [(0, 0, 199, 99), (150, 0, 199, 40), (0, 80, 60, 99), (190, 90, 199, 99)]
    rects = place_labels(boxes, [(70, 14)] * 4, size)
    assert all(r is not None for r in rects)
    assert_valid([r for r in rects if r is not None], size)


def test_a_crowd_of_labels_never_overlaps():
    rng = random.Random(12)
    size = (640, 480)
    boxes, sizes = [], []
    for _ in range(100):
        x, y = rng.randrange(600), rng.randrange(440)
        boxes.append((x, y, x + rng.randrange(1, 40), y + rng.randrange(1, 40)))
        sizes.append((rng.randrange(40, 120), 16))
    rects = place_labels(boxes, sizes, size)
    placed = [r for r in rects if r is not None]
    assert len(placed) >= 90  # room for nearly all of them
    assert_valid(placed, size)
    assert [r[2] - r[0] for r in placed] == [w for (w, _), r in zip(sizes, rects, strict=True) if r is not None]


def test_labels_that_fit_nowhere_are_left_out():
    size = (100, 30)  # room for two labels of 100 x 14 and no more
    rects = place_labels([(0, 0, 99, 29)] * 3, [(100, 14)] * 3, size)
    assert rects[2] is None and rects[0] is not None and rects[1] is not None
    assert_valid([r for r in rects if r is not None], size)
    assert place_labels([(0, 0, 10, 10)], [(120, 14)], size) == [None]  # wider than the image


@pytest.mark.parametrize("size", [(1, 1), (5, 3), (40, 30), (120, 90), (300, 200), (4000, 3000)])
def test_layout_on_small_and_large_images(size):
    dets = [
        Detection(1, "person", 0.96, (0.1, 0.1, 0.9, 0.6)),
        Detection(18, "dog", 0.80, (0.07, 0.3, 0.84, 0.8)),
        Detection(1, "person", 0.62, (0.07, 0.3, 0.84, 0.8)),
        Detection(17, "cat", 0.57, (0.0, 0.0, 1.0, 1.0)),
        Detection(3, "car", 0.5, (0.95, 0.95, 1.0, 1.0)),
    ]
    labels = layout_labels(size, dets)
    assert_valid([label.rect for label in labels], size)
    assert [label.detection.score for label in labels] == sorted(
        (label.detection.score for label in labels), reverse=True
    )
    if size[0] >= 300:
        assert len(labels) == len(dets)  # room for every label


def test_drawn_tags_are_the_laid_out_rectangles():
    size = (300, 200)
    box = (0.2, 0.2, 0.8, 0.8)
    dets = [Detection(18, "dog", 0.8, box), Detection(1, "person", 0.62, box)]
    out = np.asarray(draw_detections(Image.new("RGB", size, (128, 128, 128)), dets))
    for label in layout_labels(size, dets):
        left, top, right, bottom = label.rect
        colour = label_colour(label.detection.label_id)
        # The tag's corners carry its fill (the text never reaches the padding).
        for x, y in ((left, top), (right - 1, top), (left, bottom - 1), (right - 1, bottom - 1)):
            assert tuple(out[y, x]) == colour, (label.text, x, y)


def test_a_hundred_detections_the_most_a_model_returns():
    """threshold=0 gives SSD's 100 detections: labels that fit are placed, the rest left out, fast."""
    rng = random.Random(7)
    dets = []
    for _ in range(100):
        y, x = rng.random() * 0.9, rng.random() * 0.9
        dets.append(Detection(rng.randrange(1, 91), "traffic light", rng.random(), (y, x, y + 0.1, x + 0.1)))
    for size in ((300, 300), (640, 480), (4000, 3000)):
        labels = layout_labels(size, dets)
        assert_valid([label.rect for label in labels], size)
        assert len(labels) >= 20
        assert labels[0].detection == max(dets, key=lambda d: d.score)  # placed best first
