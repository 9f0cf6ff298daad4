"""Loading a model in the background so that liveness answers while the weights load.

A worker process builds one :class:`ModelHolder` after gunicorn forks it (TensorFlow is not
fork-safe, so nothing is loaded before the fork). Readiness probes read :attr:`ModelHolder.ready`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from core.errors import ModelNotReady
from core.model.wrapper import ModelWrapper

log = logging.getLogger(__name__)


class ModelHolder:
    """Owns the process's model and its state: ``loading``, ``ready`` or ``failed``."""

    def __init__(
        self, model: ModelWrapper, on_ready: Callable[[ModelWrapper], None] | None = None, wait_seconds: float = 0.0
    ) -> None:
        """``on_ready`` runs once the model is usable (metrics hook it); ``get()`` waits up to
        ``wait_seconds`` for a loading model, so a worker restarted under load delays requests
        instead of failing them."""
        self._model = model
        self.state = "ready" if model.ready else "loading"
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._thread: threading.Thread | None = None
        self._on_ready = on_ready
        self._wait_seconds = wait_seconds
        self._settled = threading.Event()  # set when loading ends, whether it worked or not
        if self.ready:
            self._became_ready()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self, background: bool = True) -> ModelHolder:
        """Load the model (and warm it up), in a daemon thread unless ``background`` is false."""
        if self.ready or self._thread is not None:
            return self
        if not background:
            self._load()
            return self
        self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading ends; true when the model is ready."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready

    def _load(self) -> None:
        started = time.monotonic()
        try:
            self._model.load()
        except Exception as exc:  # any failure means "not ready", said loudly in the log
            self.error = str(exc) or type(exc).__name__  # before the state, which readers check first
            self.state = "failed"
            log.error("model failed to load; the service stays not-ready: %s", self.error, exc_info=True)
            self._settled.set()
            return
        self.load_seconds = time.monotonic() - started
        self.state = "ready"
        log.info("model %s ready in %.1f s", self._model.info.id, self.load_seconds)
        self._became_ready()

    def _became_ready(self) -> None:
        self._settled.set()
        if self._on_ready is not None:
            try:
                self._on_ready(self._model)
            except Exception:  # a broken hook must not make a loaded model unusable
                log.exception("on_ready hook failed")

    def get(self) -> ModelWrapper:
        """The loaded model, or :class:`ModelNotReady` if it failed, or is still loading after the wait."""
        if self.state == "loading" and self._wait_seconds > 0:
            self._settled.wait(self._wait_seconds)
        if self.state == "failed":
            raise ModelNotReady(f"the model failed to load: {self.error}")
        if not self.ready:
            raise ModelNotReady("the model is still loading; retry shortly")
        return self._model

    @property
    def model(self) -> ModelWrapper:
        """The wrapper even before it is ready: its labels and metadata are known up front."""
        return self._model
