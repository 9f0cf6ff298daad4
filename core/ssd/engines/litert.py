"""TFLite engine: SSD models whose graph ends in the ``TFLite_Detection_PostProcess`` op.

It runs on the LiteRT runtime (``ai-edge-litert``) with XNNPACK, so a worker serving a
``.tflite`` model never imports TensorFlow: it starts in a fraction of a second and uses a
fraction of the memory. Both the official int8 SSD-MobileNet v1 and the float models written
by ``python -m core.optimize`` end in that op, so one engine serves both.

A LiteRT ``Interpreter`` is not thread-safe, so the engine keeps a pool of single-threaded
interpreters, one per engine thread; a request thread borrows one, writes the image into that
interpreter's own input buffer and gives it back. Single-threaded on purpose: with
``num_threads=2`` the op's per-class ("regular") NMS drops whole classes (TensorFlow issue
#56058, still in LiteRT 2.3.0; the float model lost every car on dog.jpg), and one interpreter
per core is as fast under concurrent load (README, Performance). Images are resized the way the
TF graphs' own preprocessor does it (see ``core.backends.resize``).
"""

from __future__ import annotations

import logging
import queue
from pathlib import Path

import numpy as np

from core.errors import ModelLoadError
from core.ssd.engines.base import RawDetections, usable_cpus
from core.ssd.engines.quiet import quiet_start
from core.ssd.engines.resize import resize_into

log = logging.getLogger(__name__)
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
#: Input quantisations (scale, zero point) under which the raw uint8 pixels are the right input:
#: none (a float model's uint8 input, cast in the graph), scale 1 / zero point 0 (the int8 model
#: ``python -m core optimize --int8`` writes) and 1/128 / 128 (TF's published int8 SSD models,
#: whose first layer expects the pixels mapped to [-1, 1] exactly so).
RAW_PIXEL_INPUTS = ((0.0, 0), (1.0, 0), (0.0078125, 128))


class TFLiteEngine:
    """Runs a detection ``.tflite`` file; ``__call__`` is thread-safe (interpreters are pooled)."""

    backend = "tflite"
    format = "tflite"

    def __init__(self, model_file: Path, engine_threads: int = 0, backend: str = "tflite") -> None:
        """``engine_threads``: how many inferences run at once, one core each (0 = all cores).
        ``backend``: the name it reports (``tflite-int8`` for the calibrated int8 model)."""
        self.backend = backend
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a broken install, not a client error
            raise ModelLoadError("the tflite backend needs the ai-edge-litert package") from exc
        self._path = Path(model_file)
        try:
            self._model = self._path.read_bytes()  # shared by every interpreter of the pool
        except OSError as exc:
            raise ModelLoadError(f"cannot read TFLite model {self._path}: {exc}") from exc
        self._interpreter_cls = Interpreter
        count = engine_threads if engine_threads > 0 else usable_cpus()
        # All made now, not on the first busy moment: creating one packs the weights (~0.1 s).
        with quiet_start():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice
            interpreters = [self._new_interpreter() for _ in range(count)]
        self._input, self._outputs, self.input_size = _describe(interpreters[0], self._path)
        self._idle: queue.LifoQueue = queue.LifoQueue()
        for interpreter in interpreters:
            self._idle.put(interpreter)
        log.info(
            "TFLite model %s: input %dx%d, %d single-threaded interpreter(s)", self._path.name, *self.input_size, count
        )

    def _new_interpreter(self):
        try:
            interpreter = self._interpreter_cls(model_content=self._model, num_threads=1)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load TFLite model {self._path}: {exc}") from exc
        return interpreter

    def __call__(self, image: np.ndarray) -> RawDetections:
        if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 [1,H,W,3] image, got {image.dtype} {list(image.shape)}")
        interpreter = self._idle.get()  # waits while every interpreter is busy
        try:
            # Resize straight into the interpreter's own input buffer: nothing model-sized is allocated.
            resize_into(image[0], self.input_size, out=interpreter.tensor(self._input)()[0])
            interpreter.invoke()
            boxes, classes, scores, count = (interpreter.get_tensor(i) for i in self._outputs)
        finally:
            self._idle.put(interpreter)
        n = int(count.reshape(-1)[0])
        return RawDetections(
            boxes=boxes[0, :n], scores=scores[0, :n], classes=classes[0, :n].astype(np.int64) + 1
        )  # op gives 0-based class index


def _describe(interpreter, path: Path) -> tuple[int, tuple[int, ...], tuple[int, int]]:
    """Input tensor index, output indices as (boxes, classes, scores, count), input (width, height).

    Outputs are found from the post-processing op's own output order, never from the model's
    output list, whose order differs between converter versions.
    """
    inputs = interpreter.get_input_details()
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
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] == POSTPROCESS_OP]
    if len(ops) != 1 or len(ops[0]["outputs"]) != 4:
        raise ModelLoadError(f"{path} is not an SSD detection model: it has no {POSTPROCESS_OP} op")
    outputs = tuple(int(i) for i in ops[0]["outputs"])
    details = {d["index"]: d for d in interpreter.get_output_details()}
    if set(outputs) - set(details):
        raise ModelLoadError(f"{path}: the {POSTPROCESS_OP} results are not the model's outputs")
    if tuple(details[outputs[0]]["shape"])[-1:] != (4,):
        raise ModelLoadError(f"{path}: unexpected box output shape {list(details[outputs[0]]['shape'])}")
    return int(spec["index"]), outputs, (shape[2], shape[1])
