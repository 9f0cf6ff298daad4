"""What an SSD engine returns, whatever runtime produced it."""

from __future__ import annotations

import os
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


def usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset or taskset), not all the host's cores."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class Engine(Protocol):
    """A loaded network. ``__call__`` must be thread-safe: request threads share one engine."""

    @property
    def backend(self) -> str:
        """``tf`` or ``tflite``, as ``/model/metadata`` reports it."""

    @property
    def format(self) -> str:
        """The model file's format: ``frozen_graph``, ``saved_model`` or ``tflite``."""

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(width, height) the network works at, or None if it takes any size."""

    def __call__(self, image: np.ndarray) -> RawDetections: ...
