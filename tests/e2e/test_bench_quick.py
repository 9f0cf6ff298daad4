"""The benchmark's smoke mode runs end to end (real gunicorn, real model) and prints its report.

No speed is asserted: CI machines are shared. This only keeps ``benchmarks/bench.py`` working.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import IMAGES, QUANT_ARCHIVE, ROOT, require

pytestmark = [pytest.mark.slow]


def test_quick_benchmark_prints_the_report(tmp_path):
    require(QUANT_ARCHIVE)
    require(IMAGES)
    output = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    for heading in ("## Benchmark", "### In-process", "### HTTP through gunicorn", "### Worker process", "### Ratios"):
        assert heading in text, heading
    assert "| v1-quant | 1 |" in text and "| v1-quant | 2 |" in text
    assert "### CPU per request" in text
    assert "| v1-quant: HTTP p50 @1 client / v1-quant:1core |" in text, "the lone-request comparison"
    assert "cores" in text and "CPU:" in text
    assert output.read_text().strip() == text.strip()


def test_quick_lone_request_benchmark_prints_both_ratios():
    require(QUANT_ARCHIVE)
    result = subprocess.run(
        [sys.executable, "benchmarks/lone_request.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| v1-quant | " in result.stdout and "| v1-quant:1core | " in result.stdout
    assert "| 1-client p50, v1-quant / v1-quant:1core |" in result.stdout
    assert "| 4-client requests/s, v1-quant / v1-quant:1core |" in result.stdout
