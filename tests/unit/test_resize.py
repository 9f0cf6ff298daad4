"""The engines' resize follows TF's legacy ResizeBilinear sampling (no half-pixel offset, no anti-aliasing)."""

from __future__ import annotations

import numpy as np

from core.ssd.engines.resize import resize_bilinear


def test_upscale_samples_at_x_times_scale_and_clamps_the_edge():
    image = np.array([[[0], [100]]], dtype=np.uint8).repeat(2, axis=0)  # 2x2, one channel
    out = resize_bilinear(image, (4, 2), np.empty((2, 4, 1), np.uint8))
    assert out[0, :, 0].tolist() == [0, 50, 100, 100]


def test_downscale_picks_samples_without_averaging_neighbours():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 10
    out = resize_bilinear(image, (2, 2), np.empty((2, 2, 1), np.uint8))
    assert out[..., 0].tolist() == [[0, 20], [80, 100]]  # pixels (0,0), (0,2), (2,0), (2,2)


def test_writes_into_the_given_buffer():
    image = np.full((7, 5, 3), 9, np.uint8)
    buffer = np.zeros((3, 3, 3), np.uint8)
    assert resize_bilinear(image, (3, 3), buffer) is buffer
    assert (buffer == 9).all()


def test_very_wide_images_give_the_same_result_and_leave_no_large_buffer():
    from core.ssd.engines import resize

    rng = np.random.default_rng(1)
    narrow = rng.integers(0, 256, (40, 1000, 3), dtype=np.uint8)
    expected = resize_bilinear(narrow, (300, 300), np.empty((300, 300, 3), np.uint8))
    kept = resize.MAX_KEPT_BYTES
    try:
        resize.MAX_KEPT_BYTES = 0  # force the path very wide images take
        assert (resize_bilinear(narrow, (300, 300), np.empty((300, 300, 3), np.uint8)) == expected).all()
    finally:
        resize.MAX_KEPT_BYTES = kept
    wide = rng.integers(0, 256, (2, 200_000, 3), dtype=np.uint8)  # a 1.2 MB row, 720 MB if 600 rows were kept
    resize_bilinear(wide, (300, 300), np.empty((300, 300, 3), np.uint8))
    assert resize._scratch.arrays[0].nbytes <= resize.MAX_KEPT_BYTES


def test_a_resize_shared_by_threads_in_bands_gives_the_same_bytes():
    """The lone-request runner resizes in bands on two or more threads: same bytes as one thread."""
    from concurrent.futures import ThreadPoolExecutor

    from core.ssd.engines.resize import resize_into

    rng = np.random.default_rng(7)
    with ThreadPoolExecutor(2) as helpers:
        for shape in [(480, 640, 3), (301, 257, 3), (300, 300, 3), (5, 900, 3)]:
            image = rng.integers(0, 256, shape, dtype=np.uint8)
            alone = resize_bilinear(image, (300, 300), np.empty((300, 300, 3), np.uint8))
            for parts in (2, 3):
                shared = np.zeros((300, 300, 3), np.uint8)
                resize_into(image, (300, 300), shared, helpers, parts)
                np.testing.assert_array_equal(shared, alone)
