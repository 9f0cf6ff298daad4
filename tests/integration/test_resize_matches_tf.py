"""The numpy resize the TFLite engine uses gives what the TF graphs' preprocessor computes."""

from __future__ import annotations

import numpy as np
import pytest

from core.ssd.engines.resize import resize_bilinear


@pytest.mark.parametrize("shape", [(476, 640), (1200, 1600), (200, 150), (301, 999), (300, 300)])
def test_equals_tf_resize_bilinear_after_rounding(shape):
    import tensorflow as tf

    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = resize_bilinear(image, (300, 300), np.empty((300, 300, 3), np.uint8))
    reference = tf.compat.v1.image.resize_bilinear(image[np.newaxis].astype(np.float32), [300, 300]).numpy()[0]
    assert np.abs(ours.astype(np.float32) - reference).max() <= 0.5 + 1e-3
