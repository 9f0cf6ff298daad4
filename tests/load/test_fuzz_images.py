"""The fixed-seed CI version of the image fuzzer (``tests/load/fuzz_images.py``): 250 mutated
JPEG, PNG, GIF, WebP, BMP and TIFF files through a real gunicorn; no 5xx, no crash or
restart, no traceback in the log, and a normal photo is served afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.load.fuzz_images import ENCODINGS, mutated, run

pytestmark = [pytest.mark.slow, pytest.mark.load]

COUNT = 250
SEED = 1


def test_inputs_are_deterministic_and_cover_every_format() -> None:
    assert mutated(SEED, 7) == mutated(SEED, 7)
    formats = {mutated(SEED, i)[0] for i in range(COUNT)}
    assert formats == {fmt for fmt, _ in ENCODINGS}


def test_mutated_images_never_get_a_5xx_or_crash_a_worker(gunicorn_env, tmp_path: Path) -> None:
    report = run(gunicorn_env, tmp_path / "gunicorn.log", COUNT, SEED)
    assert report.inputs == COUNT
    assert not report.server_errors, report.server_errors[:5]
    assert not report.transport_errors, report.transport_errors[:5]
    assert report.worker_restarts == 0 and not report.log_problems, report.log_problems
    assert report.serves_afterwards
    assert set(report.statuses) <= {200, 400}, report.statuses
