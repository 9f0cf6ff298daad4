"""Inference metrics, recorded where inference happens so every caller (HTTP, CLI, Python API) counts.

prometheus-client keeps them in process memory, or in ``PROMETHEUS_MULTIPROC_DIR`` when gunicorn
runs several workers; ``api/metrics.py`` exposes them.
"""

from __future__ import annotations

from prometheus_client import Histogram

#: Seconds per image for preprocess + network + postprocess; decoding the upload is not included.
INFERENCE_SECONDS = Histogram(
    "objdet_inference_seconds",
    "Model inference time per image (preprocess, network, postprocess), in seconds",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0),
)
