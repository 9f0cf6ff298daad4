"""TFLite engine: SSD models whose graph ends in the ``TFLite_Detection_PostProcess`` op.

It runs on the LiteRT runtime (``ai-edge-litert``) with XNNPACK, so a worker serving a
``.tflite`` model never imports TensorFlow: it starts in a fraction of a second and uses a
fraction of the memory. Both the official int8 SSD-MobileNet v1 and the models written by
``python -m core optimize`` end in that op, so one engine serves both.

A LiteRT ``Interpreter`` is not thread-safe, so the engine keeps a pool of runners, one per
engine thread; a request thread borrows one, writes the image into its own input buffer and
gives it back. Pooled runners run the whole model on one core: the fastest split under
concurrent load (docs/performance.md). A request that finds no other inference running takes
the *lone-request* runner instead (if none overlapped for ``QUIET_SECONDS``: a gap between
busy requests is no lone request), whose network uses ``lone_threads`` cores so the idle ones
shorten its wait; its NMS runs on one core in an interpreter of its own
(:mod:`core.ssd.engines.postprocess_split` says why). That runner is built on a thread of its own
once the pool exists, so the start does not wait for it; until then, and for a model that cannot
be cut, every request runs on one core. Images are resized the way the TF graphs' own
preprocessor does it (:mod:`core.ssd.engines.resize`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.errors import ModelLoadError
from core.ssd.engines.base import RawDetections, usable_cpus
from core.ssd.engines.postprocess_split import POSTPROCESS_OP, split_postprocess
from core.ssd.engines.quiet import quiet_start
from core.ssd.engines.resize import resize_into

log = logging.getLogger(__name__)
#: Input quantisations (scale, zero point) under which the raw uint8 pixels are the right input:
#: none (a float model's uint8 input, cast in the graph), scale 1 / zero point 0 (the int8 model
#: ``python -m core optimize --int8`` writes) and 1/128 / 128 (TF's published int8 SSD models,
#: whose first layer expects the pixels mapped to [-1, 1] exactly so).
RAW_PIXEL_INPUTS = ((0.0, 0), (1.0, 0), (0.0078125, 128))
#: Seconds without two inferences at once before a request may take the lone-request runner.
QUIET_SECONDS = 0.25


class _Runner:
    """An interpreter running the whole model, or one running the network and feeding a
    single-threaded NMS interpreter (``postprocess``); one request at a time."""

    def __init__(self, network, path: Path, postprocess=None, threads: int = 1) -> None:
        self.network, self.postprocess = network, postprocess
        # A runner on several cores resizes on them too, in bands (core.ssd.engines.resize).
        self.threads = threads
        self.helpers = ThreadPoolExecutor(threads - 1, thread_name_prefix="lone-resize") if threads > 1 else None
        self.input, self.links, self.outputs, self.input_size = _describe(network, postprocess, path)
        # The helpers resize into this, never into the interpreter's input: LiteRT refuses to run
        # while another thread may still hold a view of its memory.
        self.staging = np.empty((self.input_size[1], self.input_size[0], 3), np.uint8) if self.helpers else None
        self(np.zeros((self.input_size[1], self.input_size[0], 3), np.uint8))  # warm: the first call sets up kernels

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, ...]:
        # Resize straight into the interpreter's own input buffer: nothing model-sized is allocated.
        if self.staging is None:
            resize_into(frame, self.input_size, self.network.tensor(self.input)()[0])
        else:
            resize_into(frame, self.input_size, self.staging, self.helpers, self.threads)
            np.copyto(self.network.tensor(self.input)()[0], self.staging)
        self.network.invoke()
        last = self.network
        if self.postprocess is not None:
            for source, target in self.links:
                np.copyto(self.postprocess.tensor(target)(), self.network.tensor(source)())
            self.postprocess.invoke()
            last = self.postprocess
        return tuple(last.get_tensor(i) for i in self.outputs)


class TFLiteEngine:
    """Runs a detection ``.tflite`` file; ``__call__`` is thread-safe (runners are pooled)."""

    backend = "tflite"
    format = "tflite"

    def __init__(
        self, model_file: Path, engine_threads: int = 0, backend: str = "tflite", lone_threads: int = 0
    ) -> None:
        """``engine_threads``: how many inferences run at once, one core each (0 = all cores).
        ``lone_threads``: cores the network of a request may use when no other inference is running
        (0 = ``engine_threads``'s count; 1 = one core always). ``backend``: the name it reports
        (``tflite-int8`` for the calibrated int8 model)."""
        self.backend = backend
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a broken install, not a client error
            raise ModelLoadError("the tflite backend needs the ai-edge-litert package") from exc
        self._path = Path(model_file)
        try:
            self._model = self._path.read_bytes()  # shared by the pooled interpreters
        except OSError as exc:
            raise ModelLoadError(f"cannot read TFLite model {self._path}: {exc}") from exc
        self._interpreter_cls = Interpreter
        count = engine_threads if engine_threads > 0 else usable_cpus()
        self.lone_threads = lone_threads if lone_threads > 0 else count
        # All made and run once now, not on the first busy moment: each packs the weights (~0.1 s).
        with quiet_start():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice (once per process)
            runners = [self._runner(self._model, 1) for _ in range(count)]
        self.input_size = runners[0].input_size
        self._idle: queue.LifoQueue[_Runner] = queue.LifoQueue()
        for runner in runners:
            self._idle.put(runner)
        self._lock = threading.Lock()
        self._running = 0  # inferences in progress or waiting for a runner
        self._overlapped_at = -QUIET_SECONDS  # when an inference last started while another ran
        self._lone: _Runner | None = None
        self.lone_built = threading.Event()  # set once the lone-request runner is in place, or will not be
        log.info(
            "TFLite model %s: input %dx%d, %d single-threaded interpreter(s)", self._path.name, *self.input_size, count
        )
        if self.lone_threads > 1:
            threading.Thread(target=self._build_lone, name="lone-request-runner", daemon=True).start()
        else:
            self.lone_built.set()

    def _runner(self, model: bytes, threads: int, postprocess: bytes | None = None) -> _Runner:
        """A warmed-up runner for ``model`` on ``threads`` cores, feeding ``postprocess`` (one core) if given."""
        try:
            interpreters = []
            for content, count in ((model, threads), (postprocess, 1)):
                if content is not None:
                    interpreters.append(self._interpreter_cls(model_content=content, num_threads=count))
                    interpreters[-1].allocate_tensors()
            return _Runner(interpreters[0], self._path, interpreters[1] if postprocess else None, threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load TFLite model {self._path}: {exc}") from exc

    def _build_lone(self) -> None:
        """The runner whose network uses ``lone_threads`` cores; a model that cannot be cut keeps one core."""
        try:
            halves = split_postprocess(self._model, self._path.name)
            lone = self._runner(halves.network, self.lone_threads, halves.postprocess)
        except Exception as exc:  # noqa: BLE001 - a speed-up that cannot be had leaves the pool serving as before
            log.warning("a lone request stays on one core: %s", exc)
        else:
            with self._lock:
                self._lone = lone
            log.info("a lone request's network now uses %d cores", self.lone_threads)
        finally:
            self.lone_built.set()

    def __call__(self, image: np.ndarray) -> RawDetections:
        if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 [1,H,W,3] image, got {image.dtype} {list(image.shape)}")
        now = time.monotonic()
        with self._lock:
            if self._running:
                self._overlapped_at = now
            # Alone now and for a while: requests are not arriving side by side, so the idle cores are free.
            # (A lone moment inside a busy stretch is not enough: the next request would find its core taken.)
            quiet = self._running == 0 and now - self._overlapped_at >= QUIET_SECONDS
            lone = self._lone if quiet else None
            self._running += 1
        try:
            runner = lone or self._idle.get()  # waits while every pooled runner is busy
            try:
                boxes, classes, scores, count = runner(image[0])
            finally:
                if lone is None:
                    self._idle.put(runner)
        finally:
            with self._lock:
                self._running -= 1
        n = int(count.reshape(-1)[0])
        return RawDetections(
            boxes=boxes[0, :n], scores=scores[0, :n], classes=classes[0, :n].astype(np.int64) + 1
        )  # op gives 0-based class index


def _describe(network, postprocess, path: Path):
    """The network's input index, (network output, NMS input) index pairs (none for a whole
    model), the post-processing op's outputs as (boxes, classes, scores, count), and the input
    (width, height).

    Outputs are found from the post-processing op's own output order, never from the model's
    output list, whose order differs between converter versions.
    """
    inputs = network.get_input_details()
    if len(inputs) != 1:
        raise ModelLoadError(f"{path}: expected one input tensor, found {len(inputs)}")
    spec = inputs[0]
    shape = tuple(int(v) for v in spec["shape"])
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or spec["dtype"] != np.uint8:
        raise ModelLoadError(f"{path}: expected a uint8 [1,H,W,3] input, found {spec['dtype'].__name__} {list(shape)}")
    scale, zero_point = spec["quantization"]
    if (float(scale), int(zero_point)) not in RAW_PIXEL_INPUTS:
        # The engine writes raw pixels 0..255 into the input; under any other quantisation they
        # would be read as other values and the detections would be silently wrong.
        raise ModelLoadError(
            f"{path}: the uint8 input is quantised with scale {scale:g} / zero point {zero_point}; the engine "
            "writes raw pixels, so it needs scale 1 / zero point 0 (ours), 1/128 / 128 (TF's own) or none"
        )
    links: tuple[tuple[int, int], ...] = ()
    if postprocess is not None:
        sources, targets = network.get_output_details(), postprocess.get_input_details()
        for source, target in zip(sources, targets, strict=True):
            if list(source["shape"]) != list(target["shape"]) or source["dtype"] != target["dtype"]:
                raise ModelLoadError(f"{path}: the network's output {source['name']} does not fit {POSTPROCESS_OP}")
        links = tuple((int(s["index"]), int(t["index"])) for s, t in zip(sources, targets, strict=True))
    last = postprocess if postprocess is not None else network
    ops = [op for op in last._get_ops_details() if op["op_name"] == POSTPROCESS_OP]
    if len(ops) != 1 or len(ops[0]["outputs"]) != 4:
        raise ModelLoadError(f"{path} is not an SSD detection model: it has no {POSTPROCESS_OP} op")
    outputs = tuple(int(i) for i in ops[0]["outputs"])
    details = {d["index"]: d for d in last.get_output_details()}
    if set(outputs) - set(details):
        raise ModelLoadError(f"{path}: the {POSTPROCESS_OP} results are not the model's outputs")
    if tuple(details[outputs[0]]["shape"])[-1:] != (4,):
        raise ModelLoadError(f"{path}: unexpected box output shape {list(details[outputs[0]]['shape'])}")
    return int(spec["index"]), links, outputs, (shape[2], shape[1])
