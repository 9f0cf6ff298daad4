"""The result type every model wrapper returns, and its MAX-compatible JSON form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Detection:
    """One detected object. ``box`` is ``(ymin, xmin, ymax, xmax)`` normalised to the upright image."""

    label_id: int
    label: str
    score: float
    box: tuple[float, float, float, float]

    def to_json(self) -> dict[str, Any]:
        """The prediction object of MAX's ``/model/predict`` (``label_id`` is a string there)."""
        return {
            "label_id": str(self.label_id),
            "label": self.label,
            "probability": round(float(self.score), 6),
            "detection_box": [round(float(v), 6) for v in self.box],
        }


def clip_box(box: Iterable[float]) -> tuple[float, float, float, float]:
    """Clip a normalised box to [0, 1]; models may predict slightly outside the image."""
    ymin, xmin, ymax, xmax = (min(1.0, max(0.0, float(v))) for v in box)
    return (ymin, xmin, ymax, xmax)
