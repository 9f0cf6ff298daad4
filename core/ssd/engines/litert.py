"""TFLite engine: SSD models whose graph ends in the ``TFLite_Detection_PostProcess`` op.

It runs on the LiteRT runtime (``ai-edge-litert``) with XNNPACK, so a worker serving a
``.tflite`` model never imports TensorFlow: it starts in a fraction of a second and uses a
fraction of the memory. Both the official int8 SSD-MobileNet v1 and the models written by
``python -m core optimize`` end in that op, so one engine serves both.

A LiteRT ``Interpreter`` is not thread-safe, so the engine keeps a pool of runners, one per
engine thread; a request thread borrows one, writes the image into its own input buffer and
gives it back. Pooled runners are single-threaded: one core per inference is the fastest split
under concurrent load (docs/performance.md). A request that finds no other inference running
takes the *lone-request* runner instead, whose network uses ``lone_threads`` cores, so the
idle ones shorten its wait. The NMS always runs single-threaded, in its own interpreter
(:mod:`core.ssd.engines.postprocess_split` says why). Images are resized the way the TF
graphs' own preprocessor does it (:mod:`core.ssd.engines.resize`).
"""

from __future__ import annotations

import logging
import queue
import threading
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


class _Runner:
    """A network interpreter and the single-threaded NMS interpreter it feeds; one request at a time."""

    def __init__(self, network, postprocess, path: Path) -> None:
        self.network, self.postprocess = network, postprocess
        self.input, self.links, self.outputs, self.input_size = _describe(network, postprocess, path)

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, ...]:
        # Resize straight into the interpreter's own input buffer: nothing model-sized is allocated.
        resize_into(frame, self.input_size, out=self.network.tensor(self.input)()[0])
        self.network.invoke()
        for source, target in self.links:
            np.copyto(self.postprocess.tensor(target)(), self.network.tensor(source)())
        self.postprocess.invoke()
        return tuple(self.postprocess.get_tensor(i) for i in self.outputs)


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
            model = self._path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read TFLite model {self._path}: {exc}") from exc
        self._interpreter_cls = Interpreter
        self._halves = split_postprocess(model, self._path.name)  # bytes shared by every interpreter
        count = engine_threads if engine_threads > 0 else usable_cpus()
        self.lone_threads = lone_threads if lone_threads > 0 else count
        # All made and run once now, not on the first busy moment: each packs the weights (~0.1 s).
        with quiet_start():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice
            runners = [self._new_runner(1) for _ in range(count)]
            self._lone = self._new_runner(self.lone_threads) if self.lone_threads > 1 else None
        self.input_size = runners[0].input_size
        self._idle: queue.LifoQueue[_Runner] = queue.LifoQueue()
        for runner in runners:
            self._idle.put(runner)
        self._lock = threading.Lock()
        self._running = 0  # inferences in progress or waiting for a runner
        log.info(
            "TFLite model %s: input %dx%d, %d single-threaded interpreter(s); a lone request's network uses %d",
            self._path.name,
            *self.input_size,
            count,
            self.lone_threads if self._lone else 1,
        )

    def _new_runner(self, threads: int) -> _Runner:
        try:
            network = self._interpreter_cls(model_content=self._halves.network, num_threads=threads)
            network.allocate_tensors()
            postprocess = self._interpreter_cls(model_content=self._halves.postprocess, num_threads=1)
            postprocess.allocate_tensors()
            runner = _Runner(network, postprocess, self._path)
            runner(np.zeros((runner.input_size[1], runner.input_size[0], 3), np.uint8))
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load TFLite model {self._path}: {exc}") from exc
        return runner

    def __call__(self, image: np.ndarray) -> RawDetections:
        if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 [1,H,W,3] image, got {image.dtype} {list(image.shape)}")
        with self._lock:
            lone = self._lone if self._running == 0 else None  # nobody else running: the idle cores are free
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
    """The network's input index, (network output, NMS input) index pairs, the NMS outputs as
    (boxes, classes, scores, count), and the input (width, height).

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
    sources, targets = network.get_output_details(), postprocess.get_input_details()
    for source, target in zip(sources, targets, strict=True):
        if list(source["shape"]) != list(target["shape"]) or source["dtype"] != target["dtype"]:
            raise ModelLoadError(f"{path}: the network's output {source['name']} does not fit the {POSTPROCESS_OP} op")
    links = tuple((int(s["index"]), int(t["index"])) for s, t in zip(sources, targets, strict=True))
    (op,) = (op for op in postprocess._get_ops_details() if op["op_name"] == POSTPROCESS_OP)
    outputs = tuple(int(i) for i in op["outputs"])
    if len(outputs) != 4:
        raise ModelLoadError(f"{path}: its {POSTPROCESS_OP} op has {len(outputs)} outputs, not 4")
    box_shape = list(postprocess.get_tensor_details()[outputs[0]]["shape"])
    if box_shape[-1:] != [4]:
        raise ModelLoadError(f"{path}: unexpected box output shape {box_shape}")
    return int(spec["index"]), links, outputs, (shape[2], shape[1])
