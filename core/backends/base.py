"""What an SSD engine returns, whatever runtime produced it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RawDetections:
    """Model-zoo SSD outputs for one image: boxes ``(N,4)`` normalised ymin,xmin,ymax,xmax,
    scores ``(N,)`` and COCO-style class ids ``(N,)`` (1-based, as in the label map)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


class Engine(Protocol):
    """A loaded network. ``__call__`` must be thread-safe: request threads share one engine."""

    backend: str
    format: str
    #: (width, height) the network works at, or None if it takes any size.
    input_size: tuple[int, int] | None

    def __call__(self, image: np.ndarray) -> RawDetections: ...
