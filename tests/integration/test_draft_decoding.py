"""Reduced-size JPEG decoding (Pillow ``draft``, driven by the model's input size) keeps the detections.

Most photos in ../shared are under 800 px, too small for ``draft`` to engage, so those are
enlarged 4x and re-encoded, as a phone photo would be; a large one is used as it is. The reference decodes the same JPEG in full and
shrinks it by the same factor with a box filter: both then feed the network the same scene at
the same size, and only the decoding differs. (Feeding the full-size decode straight to the
model is no reference: TF's non-anti-aliased resize from 3000 px to 300 aliases, and moves small
boxes more than ``draft`` does.)
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.model.images import DecodedImage, decode_image
from tests.conftest import IMAGES, require
from tests.integration.test_optimized_parity import PHOTOS, unmatched

SCALE = 4
LARGE = 1500
MAX_PIXELS = 200_000_000


def large_jpeg(name: str) -> bytes:
    data = require(IMAGES / name).read_bytes()
    photo = Image.open(io.BytesIO(data))
    if max(photo.size) >= LARGE:
        return data
    buffer = io.BytesIO()
    photo = photo.convert("RGB")
    photo.resize((photo.width * SCALE, photo.height * SCALE), Image.BICUBIC).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("name", PHOTOS)
def test_draft_decoding_keeps_labels_and_boxes(detector, name):
    data = large_jpeg(name)
    drafted = detector.decode(data, MAX_PIXELS)
    full = decode_image(data, MAX_PIXELS)
    factor = round(full.size[0] / drafted.size[0])
    assert factor >= 2, "draft did not reduce the decode"
    assert min(drafted.size) >= 300, "draft went below the model input"
    reference = DecodedImage(full.image.reduce(factor), full.format, full.original_size)
    assert reference.size == drafted.size
    expected = detector.detect(reference, threshold=0.5)
    found = detector.detect(drafted, threshold=0.5)
    assert sorted(d.label for d in found) == sorted(d.label for d in expected)
    assert unmatched(expected, found, min_iou=0.9, max_score_gap=1.0) == []
