"""A per-process budget on the memory that decoding uploads may hold at once.

``MAX_IMAGE_PIXELS`` bounds one image; it does not bound four threads each decoding one. A
small, highly compressed float TIFF or RGBA PNG at the pixel limit costs 10-14 bytes per pixel
while it is decoded, converted, run through the model and (for annotate) drawn and encoded
(``benchmarks/decode_memory.py``), so four of them pushed a 2 GiB worker to the edge. Each
request now reserves its worst case, ``pixels x BYTES_PER_PIXEL[mode]``, before any pixel is
decoded, and gives it back when its answer is built:

* reservations are granted first come, first served, so a large image is not starved by a
  stream of small ones;
* one that cannot be granted within ``wait_seconds`` raises :class:`Overloaded` (503 with
  ``Retry-After``);
* one larger than the whole budget is granted when nothing else holds any (it runs alone),
  so every image within ``MAX_IMAGE_PIXELS`` can still be served.

After a large reservation is returned, :func:`release_memory` asks glibc to give freed heap
pages back to the kernel, so a worker does not keep gigabytes after a burst of big uploads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from core.errors import Overloaded

#: Peak bytes per decoded pixel of one request, by the mode Pillow opens the image in: decoding,
#: conversion to RGB, the model's input array, drawing and encoding the answer. Measured with
#: ``benchmarks/decode_memory.py`` (12 MP: 8-12 bytes), plus about 15 % margin.
BYTES_PER_PIXEL: dict[str, int] = {"F": 14, "I": 13, "I;32": 13, "I;16": 12, "I;16B": 12, "I;16L": 12, "RGBA": 12}
#: Every other mode (RGB, L, P, CMYK, YCbCr, LA, ...).
DEFAULT_BYTES_PER_PIXEL = 12
#: Returning this much or more triggers :func:`release_memory`.
TRIM_BYTES = 32 << 20


def cost_bytes(pixels: int, mode: str) -> int:
    """The reservation for decoding ``pixels`` pixels opened in Pillow ``mode``."""
    return pixels * BYTES_PER_PIXEL.get(mode, DEFAULT_BYTES_PER_PIXEL)


class DecodeBudget:
    """At most ``capacity_bytes`` reserved at once; waits are first come, first served."""

    def __init__(self, capacity_bytes: int, wait_seconds: float) -> None:
        self.capacity = capacity_bytes
        self.wait_seconds = wait_seconds
        self.reserved = 0
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` (at most the capacity) for the ``with`` block, or raise :class:`Overloaded`."""
        amount = min(max(0, nbytes), self.capacity)
        if amount == 0:
            yield
            return
        ticket = object()
        deadline = time.monotonic() + self.wait_seconds
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self.reserved + amount > self.capacity:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Overloaded(
                            f"the server is decoding other large images; retry in a few seconds "
                            f"(this one needs {amount >> 20} MiB of the {self.capacity >> 20} MiB decode budget)",
                            retry_after=max(1, round(self.wait_seconds)),
                        )
                    self._cond.wait(left)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now, or be first now
            self.reserved += amount
        try:
            yield
        finally:
            with self._cond:
                self.reserved -= amount
                self._cond.notify_all()
            if amount >= TRIM_BYTES:
                release_memory()


@cache
def _glibc(name: str, argtypes: tuple, restype):
    """The glibc function ``name`` with its C signature, or None (musl, macOS)."""
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = list(argtypes), restype
    return function


#: glibc's ``mallopt`` parameter for the number of malloc arenas (``M_ARENA_MAX``).
_M_ARENA_MAX = -8


def limit_malloc_arenas(count: int) -> bool:
    """Let glibc keep at most ``count`` malloc arenas (``mallopt(M_ARENA_MAX)``); False where unavailable.

    By default every thread that allocates may get an arena of its own (up to 8 per core), and each
    keeps the memory its requests freed: a worker's request and buffering threads held ~15 MB more
    after a benchmark than with two arenas (docs/performance.md). Call it before the threads start.
    """
    mallopt = _glibc("mallopt", (ctypes.c_int, ctypes.c_int), ctypes.c_int)
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, count))


def release_memory() -> bool:
    """Return freed heap memory to the kernel (glibc ``malloc_trim(0)``); False where unavailable."""
    trim = _glibc("malloc_trim", (ctypes.c_size_t,), ctypes.c_int)
    if trim is None:
        return False
    trim(0)
    return True
