"""The decode memory budget: first come first served, a bounded wait, never a deadlock on a
request larger than the whole budget."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from core.errors import Overloaded
from core.model.budget import BYTES_PER_PIXEL, DecodeBudget, cost_bytes, release_memory
from core.model.images import decode_cost

MB = 1 << 20


def test_cost_is_charged_by_the_worst_mode() -> None:
    assert cost_bytes(1_000, "F") == 1_000 * BYTES_PER_PIXEL["F"] > cost_bytes(1_000, "RGB")


def test_decode_cost_reads_the_header_and_follows_the_jpeg_draft() -> None:
    out = io.BytesIO()
    Image.fromarray(np.zeros((1200, 1600), np.float32)).save(out, "TIFF")
    assert decode_cost(out.getvalue(), 40_000_000) == cost_bytes(1600 * 1200, "F")
    out = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(out, "JPEG")
    full = decode_cost(out.getvalue(), 40_000_000)
    assert full == cost_bytes(12_000_000, "RGB")
    assert decode_cost(out.getvalue(), 40_000_000, (300, 300)) <= full / 16  # drafted to 1/4 or less a side


@pytest.mark.parametrize("data", [b"not an image", b""])
def test_what_is_refused_before_decoding_costs_nothing(data: bytes) -> None:
    assert decode_cost(data, 40_000_000) == 0


def test_a_request_that_does_not_fit_waits_then_gets_overloaded_with_retry_after() -> None:
    budget = DecodeBudget(100 * MB, wait_seconds=0)
    with budget.reserve(80 * MB):
        with pytest.raises(Overloaded, match="decode budget") as raised:
            with budget.reserve(30 * MB):
                pass
        assert raised.value.retry_after >= 1
        with budget.reserve(20 * MB):  # what fits goes at once
            assert budget.reserved == 100 * MB
    assert budget.reserved == 0


def test_an_image_larger_than_the_budget_runs_alone() -> None:
    budget = DecodeBudget(100 * MB, wait_seconds=0)
    with budget.reserve(500 * MB):
        assert budget.reserved == 100 * MB


def test_waiters_are_served_in_arrival_order() -> None:
    budget = DecodeBudget(100 * MB, wait_seconds=30)
    order: list[str] = []
    holding = budget.reserve(100 * MB)
    holding.__enter__()

    def request(name: str, size: int) -> None:
        with budget.reserve(size):
            order.append(name)

    big = threading.Thread(target=request, args=("big", 90 * MB))
    big.start()
    while not budget._queue:  # the big one queues first
        time.sleep(0.01)
    small = threading.Thread(target=request, args=("small", 5 * MB))
    small.start()
    while len(budget._queue) < 2:
        time.sleep(0.01)
    holding.__exit__(None, None, None)
    big.join(10)
    small.join(10)
    assert order == ["big", "small"]  # the small one could have fitted first, but came second


def test_memory_is_handed_back_on_glibc() -> None:
    assert release_memory() in (True, False)
