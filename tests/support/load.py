"""Concurrent clients posting real photos to ``/model/predict``, recording every outcome.

Bounded twice: clients stop when told, and in any case after ``max_seconds``.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import requests


@dataclass(frozen=True)
class Outcome:
    """One request: when it started (monotonic), how long it took, and the status or the error."""

    started: float
    seconds: float
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def read_images(paths: list[Path]) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in paths]


class ClientThreads:
    """``clients`` threads, each calling :meth:`_client` until ``stop()`` or ``max_seconds``;
    their outcomes are collected under a lock. Subclasses say what one client does."""

    def __init__(self, clients: int, max_seconds: float, timeout: float) -> None:
        self.clients, self.max_seconds, self.timeout = clients, max_seconds, timeout
        self.outcomes: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i, deadline), name=f"client-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Any]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.results()

    def results(self) -> list[Any]:
        with self._lock:
            return list(self.outcomes)

    def record(self, outcome: Any) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def running(self, deadline: float) -> bool:
        return not self._stop.is_set() and time.monotonic() < deadline

    def _client(self, index: int, deadline: float) -> None:
        raise NotImplementedError


class Load(ClientThreads):
    """``clients`` threads, each with its own keep-alive session, posting images round-robin."""

    def __init__(
        self,
        url: str,
        images: list[tuple[str, bytes]],
        clients: int = 8,
        max_seconds: float = 600,
        timeout: float = 60,
        threshold: float = 0.5,
    ) -> None:
        if not images:
            raise ValueError("need at least one image")
        super().__init__(clients, max_seconds, timeout)
        self.url = f"{url}/model/predict"
        self.images = images
        self.threshold = threshold

    def _client(self, index: int, deadline: float) -> None:
        session = requests.Session()
        images = itertools.islice(itertools.cycle(self.images), index, None)  # clients start on different photos
        try:
            while self.running(deadline):
                name, data = next(images)
                started = time.monotonic()
                try:
                    response = session.post(
                        self.url,
                        files={"image": (name, data)},
                        data={"threshold": str(self.threshold)},
                        timeout=self.timeout,
                    )
                    outcome = Outcome(started, time.monotonic() - started, response.status_code)
                except requests.RequestException as exc:
                    outcome = Outcome(started, time.monotonic() - started, None, f"{type(exc).__name__}: {exc}")
                self.record(outcome)
        finally:
            session.close()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
