"""Structural checks that run before decoding: JPEG scan counting and PNG completeness."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.errors import InvalidInput
from core.model.images import decode_image
from core.model.structure import DEFAULT_MAX_JPEG_SCANS, check_png_complete, count_jpeg_scans
from tests.support.hostile_images import png_rgb, progressive_jpeg, with_empty_scans


def _jpeg(**options) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG", **options)
    return out.getvalue()


def test_baseline_jpeg_has_one_scan_and_progressive_about_ten() -> None:
    assert count_jpeg_scans(_jpeg(), 100) == 1
    assert 2 <= count_jpeg_scans(_jpeg(progressive=True), 100) <= 12


def test_scans_hidden_after_the_image_are_counted_and_counting_stops_past_the_limit() -> None:
    base = progressive_jpeg(64, 48)
    n = count_jpeg_scans(base, 1000)
    assert count_jpeg_scans(with_empty_scans(base, 50), 1000) == n + 50
    assert count_jpeg_scans(with_empty_scans(base, 5000), 10) == 11


def test_scan_bomb_is_refused_naming_the_limit() -> None:
    data = with_empty_scans(progressive_jpeg(640, 480), 2 * DEFAULT_MAX_JPEG_SCANS)
    with pytest.raises(InvalidInput, match=f"more than {DEFAULT_MAX_JPEG_SCANS} scans.*MAX_JPEG_SCANS"):
        decode_image(data, 40_000_000)


def test_a_lower_scan_limit_refuses_an_ordinary_progressive_jpeg() -> None:
    with pytest.raises(InvalidInput, match="more than 1 scans"):
        decode_image(_jpeg(progressive=True), 40_000_000, max_jpeg_scans=1)
    assert decode_image(_jpeg(), 40_000_000, max_jpeg_scans=1).size == (64, 48)


def test_complete_png_passes_and_decodes() -> None:
    check_png_complete(png_rgb(32, 32))
    assert decode_image(png_rgb(32, 32), 40_000_000).size == (32, 32)


@pytest.mark.parametrize("interlace", [False, True])
def test_pillow_written_pngs_pass(interlace: bool) -> None:
    out = io.BytesIO()
    Image.effect_noise((33, 17), 50).convert("RGBA").save(out, "PNG", interlace=interlace)
    check_png_complete(out.getvalue())


@pytest.mark.parametrize(
    "data, words",
    [
        (png_rgb(32, 32, rows=10), "rows are missing"),
        (png_rgb(32, 32, iend=False), "no IEND"),
        (png_rgb(32, 32)[:-20], "cut short"),
    ],
    ids=["fewer-rows", "no-iend", "cut-chunk"],
)
def test_incomplete_png_is_refused(data: bytes, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        decode_image(data, 40_000_000)


def test_pillow_is_never_told_to_load_truncated_images() -> None:
    from PIL import ImageFile

    import app  # noqa: F401 - everything the service imports

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
