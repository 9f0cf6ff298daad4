"""TensorFlow imported, and LiteRT interpreters made, without their start-up noise on stderr,
unless the user asks for it.

Importing TensorFlow prints absl's "All log messages before absl::InitializeLog() ..." warning,
the oneDNN notice and the CPU-feature notice, straight to file descriptor 2 from C++: Python's
logging never sees them and ``TF_CPP_MIN_LOG_LEVEL`` only silences the last one. So, unless
debug logging is on (``LOG_LEVEL=DEBUG`` in the service) or the user set
``TF_CPP_MIN_LOG_LEVEL=0``, this sets ``TF_CPP_MIN_LOG_LEVEL=2`` when it is unset (TensorFlow's
C++ errors still show) and, while TensorFlow is imported, passes stderr through a filter that
drops exactly those lines; everything else written meanwhile, by any thread, goes through.
LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." is filtered the same way
while the TFLite engine makes its interpreters.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

#: The lines TensorFlow prints on import and nothing else: absl's pre-initialisation warning, the
#: oneDNN and CPU-feature notices (INFO lines from port.cc and cpu_feature_guard.cc) and the
#: second line of the latter; and LiteRT's notice when an interpreter gets XNNPACK.
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:.]+ +\d+ (port|cpu_feature_guard)\.cc:\d+\] "
    rb"|To enable the following instructions: "
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$)"
)


def tensorflow_requested_verbose() -> bool:
    """Debug logging is on, or the user asked TensorFlow for all of its C++ logs."""
    return logging.getLogger().isEnabledFor(logging.DEBUG) or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, quietly unless asked (see the module docstring)."""
    if "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    with quiet_start():
        import tensorflow
    return tensorflow


@contextmanager
def quiet_start() -> Iterator[None]:
    """Run the block (an import, an engine's set-up) with the start-up noise kept off stderr,
    unless asked (see the module docstring)."""
    if tensorflow_requested_verbose():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr(NOISE):
        yield


@contextmanager
def filtered_stderr(noise: re.Pattern[bytes]) -> Iterator[None]:
    """While inside, lines written to file descriptor 2 that match ``noise`` are dropped; the rest
    reach the real stderr (a thread forwards them as they come)."""
    sys.stderr.flush()
    try:
        read_end, write_end = os.pipe()
    except OSError:  # out of file descriptors: better noise than no start
        yield
        return
    try:
        real = os.dup(2)
    except OSError:  # no stderr to filter (closed): nothing to hide either
        os.close(read_end)
        os.close(write_end)
        yield
        return

    def forward() -> None:
        # The pump owns ``real``: a child process started meanwhile may hold the pipe open after
        # the block ends, and its lines must still reach stderr, never a reused descriptor.
        try:
            with os.fdopen(read_end, "rb") as pipe:
                for line in pipe:
                    if not noise.match(line):
                        os.write(real, line)
        finally:
            os.close(real)

    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the pump reads to the end and stops
        pump.join(timeout=10)
