"""Inference metrics, recorded where inference happens so every caller (HTTP, CLI, Python API) counts.

prometheus-client keeps them in process memory, or in ``PROMETHEUS_MULTIPROC_DIR`` when gunicorn
runs several workers; ``api/middleware/metrics.py`` exposes them.

prometheus-client is imported on first use, not with this module: it chooses between memory and
``PROMETHEUS_MULTIPROC_DIR`` once, when it is imported. gunicorn's master imports ``config`` (and
so ``core``) before its ``on_starting`` hook sets that directory; had it imported
prometheus-client too, every forked worker would count in its own memory and ``/metrics`` would
show nothing.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_histogram: Any = None


def inference_seconds() -> Any:
    """The histogram of seconds per image for preprocess + network + postprocess (decoding excluded).

    Made once under a lock: threads that detect at once for the first time would otherwise each
    register it, and prometheus-client refuses the second (``DuplicateTimeseries``).
    """
    global _histogram
    if _histogram is not None:  # the common case: no lock per inference
        return _histogram
    with _lock:
        if _histogram is None:
            from prometheus_client import Histogram

            _histogram = Histogram(
                "objdet_inference_seconds",
                "Model inference time per image (preprocess, network, postprocess), in seconds",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0),
            )
        return _histogram
