"""Bilinear resizing that matches TensorFlow's ``ResizeBilinear`` (the SSD graphs' preprocessor).

The TF Object Detection API resizes with ``align_corners=False, half_pixel_centers=False`` and no
anti-aliasing; the networks were trained on that. Pillow's ``BILINEAR`` anti-aliases when it
shrinks, which moves SSD scores by up to 0.2 on real photos, so engines that take a fixed input
size resize with this instead: vectorised numpy, sample tables cached per image size, work
arrays kept per thread.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, wait
from functools import lru_cache
from itertools import pairwise

import numpy as np

_scratch = threading.local()  # per request thread: the work arrays of the last resize
#: Largest block of source rows a thread keeps between calls; wider images take a path that keeps nothing.
MAX_KEPT_BYTES = 8 << 20


@lru_cache(maxsize=32)
def _axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (low, high) and the weight of ``high`` for each output position."""
    scale = np.float32(in_size / out_size)
    src = np.arange(out_size, dtype=np.float32) * scale
    low = np.floor(src).astype(np.intp)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (src - low).astype(np.float32)


@lru_cache(maxsize=32)
def _columns(in_width: int, out_width: int, channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_axis`` along x, as indices into a row of ``in_width * channels`` values, one per channel."""
    low, high, weight = _axis(in_width, out_width)
    channel = np.arange(channels)
    return (
        (low[:, np.newaxis] * channels + channel).ravel(),
        (high[:, np.newaxis] * channels + channel).ravel(),
        np.repeat(weight, channels),
    )


def _buffers(rows: int, row_values: int, out_values: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This thread's work arrays: the gathered source rows, one uint8 and two float32 [rows, out_values].

    Reused, not allocated per call: on the service's machine the page faults of fresh multi-MB
    arrays cost twice the arithmetic (resize of a photo: ~3.5 ms fresh, ~1.2 ms reused). Kept
    at the largest size asked for and sliced, so a thread that resizes whole images and bands
    in turn does not reallocate.
    """
    held = getattr(_scratch, "arrays", None)
    if held is None or held[0].size < rows * row_values or held[1].size < rows * out_values:
        held = (
            np.empty(max(rows * row_values, held[0].size if held is not None else 0), np.uint8),
            *(
                np.empty(max(rows * out_values, held[1].size if held is not None else 0), dtype)
                for dtype in (np.uint8, np.float32, np.float32)
            ),
        )
        _scratch.arrays = held
    source = held[0][: rows * row_values].reshape(rows, row_values)
    gathered, left, right = (array[: rows * out_values].reshape(rows, out_values) for array in held[1:])
    return source, gathered, left, right


def resize_bilinear(image: np.ndarray, size: tuple[int, int], out: np.ndarray, band: slice = slice(None)) -> np.ndarray:
    """Resize ``image`` (``[H,W,C]`` uint8) to ``size`` = (width, height) into ``out`` (uint8, rounded).

    Gathers on uint8 first and interpolates in place in float32, as TF does (x first, then y):
    about 1 ms for a photo, identical to TF's output after rounding. Thread-safe: each thread
    has its own work arrays. ``band``: only these output rows (of the whole resized image) are
    written, so that threads can share one resize.
    """
    width, full_height = size
    in_height, in_width, channels = image.shape
    y0, y1, fy = (table[band] for table in _axis(in_height, full_height))
    height = len(y0)
    x0, x1, fx = _columns(in_width, width, channels)
    rows = np.concatenate([y0, y1])  # rows y0 then rows y1: each x step does top and bottom rows at once
    flat = image.reshape(in_height, in_width * channels)
    if 2 * height * in_width * channels <= MAX_KEPT_BYTES:
        source, gathered, left, right = _buffers(2 * height, in_width * channels, width * channels)
        np.take(flat, rows, axis=0, out=source)
        np.take(source, x0, axis=1, out=gathered)
        np.copyto(left, gathered)
        np.take(source, x1, axis=1, out=gathered)
        np.copyto(right, gathered)
    else:  # a very wide image: gather just the samples, keep nothing (a 40-megapixel row is 120 MB)
        left = flat[rows[:, np.newaxis], x0].astype(np.float32)
        right = flat[rows[:, np.newaxis], x1].astype(np.float32)
    right -= left
    right *= fx
    left += right  # top rows, then bottom rows, interpolated along x
    top, bottom = left[:height], left[height:]
    bottom -= top
    bottom *= fy[:, np.newaxis]
    top += bottom
    np.rint(top, out=top)
    np.copyto(out[band], top.reshape(height, width, channels), casting="unsafe")
    return out


def resize_into(
    frame: np.ndarray, size: tuple[int, int], out: np.ndarray, helpers: Executor | None = None, parts: int = 1
) -> None:
    """Write ``frame`` ``[H,W,C]`` into ``out`` at ``size`` = (width, height): a copy when it already
    has that size, else :func:`resize_bilinear`. What every fixed-size engine does before the network.

    With ``helpers``, the output rows are cut into ``parts`` bands and all but the first are
    resized on the helpers' threads at the same time (numpy releases the GIL): a lone request's
    resize on two cores took 2.3 ms instead of 4.7 (docs/performance.md). Same bytes either way.
    The helpers may still hold ``out`` for a moment after their band is done, so ``out`` must not
    be memory whose owner refuses outside references (a LiteRT input tensor): copy from a staging array.
    """
    if (frame.shape[1], frame.shape[0]) == size:
        np.copyto(out, frame)
    elif helpers is None or parts < 2:
        resize_bilinear(frame, size, out=out)
    else:
        edges = [size[1] * i // parts for i in range(parts + 1)]
        bands = [slice(top, bottom) for top, bottom in pairwise(edges)]
        others = [helpers.submit(resize_bilinear, frame, size, out, band) for band in bands[1:]]
        try:
            resize_bilinear(frame, size, out, bands[0])
        finally:
            wait(others)  # never return while a helper still writes into ``out``
        for done in others:
            done.result()
