"""The inference histogram is made once, even when the first detections happen at once."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

RACE = """
import threading
from core.metrics import inference_seconds

barrier, made, errors = threading.Barrier(8), [], []

def first_use():
    barrier.wait()
    try:
        made.append(inference_seconds())
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=first_use) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors
assert len(made) == 8 and len({id(h) for h in made}) == 1
"""


def test_threads_that_detect_first_at_once_share_one_histogram():
    """A fresh process (prometheus-client not imported yet), eight threads released together."""
    done = subprocess.run([sys.executable, "-c", RACE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
