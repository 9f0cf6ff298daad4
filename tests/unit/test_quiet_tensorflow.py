"""TensorFlow's start-up noise stays off stderr unless asked (core/ssd/engines/quiet.py)."""

from __future__ import annotations

import logging
import os
import sys
import threading

from core.ssd.engines.quiet import NOISE, filtered_stderr, tensorflow_requested_verbose

# What TensorFlow 2.x prints on import, verbatim but for the timestamps and thread ids.
TF_NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1795994990.015926   18407 port.cc:153] oneDNN custom operations are on. You may see ...\n",
    b"I0000 00:00:1795994990.151472   18407 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...\n",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow ...\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",  # LiteRT, making an interpreter
]


def test_only_the_import_noise_is_dropped_and_everything_else_passes(capfd):
    with filtered_stderr(NOISE):
        for line in TF_NOISE:
            os.write(2, line)
        os.write(2, b"E0000 00:00:1.0 1 some_op.cc:1] a real TensorFlow error\n")
        # One write call with its newline: print() writes the text and the newline apart, and the
        # fd write above could land between them on a busy machine (seen in CI).
        worker = threading.Thread(target=lambda: sys.stderr.write("a request log line from another thread\n"))
        worker.start()
        worker.join()
    print("after", file=sys.stderr)
    err = capfd.readouterr().err.splitlines()
    # Python's sys.stderr and file descriptor 2 are two routes (pytest may hold the first), so the
    # two lines written inside may arrive in either order; "after" comes last.
    assert sorted(err[:-1]) == [
        "E0000 00:00:1.0 1 some_op.cc:1] a real TensorFlow error",
        "a request log line from another thread",
    ]
    assert err[-1] == "after"


def test_debug_logging_or_tf_cpp_min_log_level_0_asks_for_the_noise(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.INFO)
        assert not tensorflow_requested_verbose()
        root.setLevel(logging.DEBUG)
        assert tensorflow_requested_verbose()
        root.setLevel(logging.INFO)
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
        assert tensorflow_requested_verbose()
    finally:
        root.setLevel(level)


def test_a_child_that_outlives_the_block_still_reaches_stderr(capfd):
    """A process started inside inherits the filter's pipe; what it writes later is still forwarded
    (leaving the block waits up to 10 s for such a child to let go of the pipe)."""
    import subprocess
    import time

    with filtered_stderr(NOISE):
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; time.sleep(0.3); print('late', file=sys.stderr)"]
        )
    print("after", file=sys.stderr)
    child.wait(timeout=30)
    err = ""
    for _ in range(100):  # the pump forwards the child's line once it has written it
        err += capfd.readouterr().err
        if "late" in err:
            break
        time.sleep(0.05)
    assert sorted(err.splitlines()) == ["after", "late"]
