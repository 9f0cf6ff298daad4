"""Structural checks that run before decoding: JPEG scan counting and PNG completeness."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.errors import InvalidInput
from core.model.images import decode_cost, decode_image
from core.model.structure import DEFAULT_MAX_JPEG_SCANS, check_png_complete, check_tiff_tags, count_jpeg_scans
from tests.support.hostile_images import png_rgb, progressive_jpeg, tiff_with_overlapping_tags, with_empty_scans


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


def test_tiff_whose_tags_all_point_at_the_same_data_is_refused_before_opening() -> None:
    data = tiff_with_overlapping_tags(tags=100, size=100_000)
    with pytest.raises(InvalidInput, match="the TIFF is malformed: its tags refer to more than"):
        decode_image(data, 40_000_000)
    assert decode_cost(data, 40_000_000) == 0


def test_jpeg_whose_exif_tags_overlap_is_refused() -> None:
    exif = tiff_with_overlapping_tags(tags=2_000, size=30_000)  # 24 KB of directory, 60 MB declared
    out = io.BytesIO()
    Image.new("RGB", (64, 48)).save(out, "JPEG", exif=b"Exif\x00\x00" + exif)
    with pytest.raises(InvalidInput, match="EXIF block is malformed"):
        decode_image(out.getvalue(), 40_000_000)


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_ordinary_tiffs_pass(compression: str | None) -> None:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.effect_noise((64, 48), 40).convert("RGB").save(out, "TIFF", compression=compression, exif=exif)
    check_tiff_tags(out.getvalue())
    assert decode_image(out.getvalue(), 40_000_000).size == (48, 64)
