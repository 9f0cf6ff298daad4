"""TensorFlow engine for TF Object-Detection-API exports: TF1 frozen graphs and TF2 SavedModels.

The graph is imported once and pruned to a concrete function; every request calls that same
function (thread-safe, nothing built per request) -- the opposite of MAX, which opened a
session per request.

When the graph's preprocessor resizes every image to one fixed size (SSD's
``fixed_shape_resizer``), the engine does that resize itself with the graph's own bilinear
sampling (``core.backends.resize``; identical but for rounding to uint8, at most 0.5 of 255) and
hands TensorFlow the small image: the graph's own resize then changes nothing, and TensorFlow
never holds a float copy of a full-size photo (a 12-megapixel upload is 144 MB as float32; four
at once pushed a worker past 2 GiB).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.errors import ModelLoadError
from core.ssd.engines.base import RawDetections
from core.ssd.engines.quiet import import_tensorflow
from core.ssd.engines.resize import resize_into

log = logging.getLogger(__name__)
OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def fixed_input_size(graph_def) -> tuple[int, int] | None:
    """(width, height) the SSD preprocessor resizes every image to, or None if it does not.

    Only one TF1-style ``ResizeBilinear`` (no ``align_corners``, no ``half_pixel_centers``) to a
    constant size qualifies: that is what ``core.backends.resize`` reproduces. TF1 graphs keep it
    among their nodes; a SavedModel's signature keeps it in a library function.
    """
    from tensorflow.python.framework import tensor_util

    for nodes in [list(graph_def.node)] + [list(f.node_def) for f in graph_def.library.function]:
        resizes = [n for n in nodes if n.op == "ResizeBilinear" and n.name.startswith("Preprocessor/")]
        if not resizes:
            continue
        if len(resizes) > 1 or resizes[0].attr["align_corners"].b or resizes[0].attr["half_pixel_centers"].b:
            return None
        size = {n.name: n for n in nodes}.get(resizes[0].input[1].split(":")[0].lstrip("^"))
        if size is None or size.op != "Const":
            return None
        height, width = (int(v) for v in tensor_util.MakeNdarray(size.attr["value"].tensor))
        return width, height
    return None


def _tf(engine_threads: int):
    """TensorFlow set up to run ``engine_threads`` inferences at once, each on one core.

    One intra-op thread per op and ``engine_threads`` inter-op threads: concurrent requests
    each get a core, which is how TFLite's interpreter pool works too. On the 2-core benchmark
    machine this gave 60 images/s from 4 request threads against 40 with the opposite split
    (2 intra-op threads, 1 inter-op) in a standalone run, at single-request latency within 7 %
    (README, Performance). 0 leaves TensorFlow's own defaults (all cores for both pools).
    """
    try:
        tf = import_tensorflow()  # without its start-up noise on stderr unless asked
    except ModuleNotFoundError as exc:  # the image built with BACKEND=tflite has no TensorFlow
        if exc.name != "tensorflow":
            raise  # TensorFlow is there but broken: its own message says why
        raise ModelLoadError(
            "the tf backend needs TensorFlow, which this installation does not have "
            "(an image built with BACKEND=tflite): set BACKEND=tflite"
        ) from exc

    if engine_threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(engine_threads)
        except RuntimeError:  # already initialised in this process (a second detector): keep the first setting
            log.debug("TensorFlow threading already configured")
    return tf


class TensorFlowEngine:
    """Runs a frozen graph (``image_tensor:0`` input) or a SavedModel (``serving_default``)."""

    backend = "tf"
    input_size: tuple[int, int] | None = None

    def __init__(self, path: Path, fmt: str, engine_threads: int = 0) -> None:
        self.format = fmt
        tf = _tf(engine_threads)
        try:
            if fmt == "frozen_graph":
                self._call, graph_def = self._load_frozen_graph(tf, path)
            elif fmt == "saved_model":
                loaded = tf.saved_model.load(str(path))
                self._keep = loaded  # the signature needs its owner alive
                signature = loaded.signatures["serving_default"]
                self._call = lambda x: signature(input_tensor=x)
                graph_def = signature.graph.as_graph_def()
            else:
                raise ModelLoadError(f"the TensorFlow engine cannot load format {fmt!r}")
            self.input_size = fixed_input_size(graph_def)
        except ModelLoadError:
            raise
        except Exception as exc:  # TF raises many types for bad files; all mean "cannot load"
            raise ModelLoadError(f"cannot load {fmt} from {path}: {exc}") from exc
        self._tf = tf

    @staticmethod
    def _load_frozen_graph(tf, path: Path):
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(path.read_bytes())

        def _import():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(_import, [])
        graph = wrapped.graph
        try:
            image = graph.get_tensor_by_name("image_tensor:0")
            outputs = [graph.get_tensor_by_name(f"{name}:0") for name in OUTPUTS]
        except KeyError as exc:
            raise ModelLoadError(
                f"{path} is not a TF Object Detection API export (needs image_tensor and {', '.join(OUTPUTS)}): {exc}"
            ) from exc
        return wrapped.prune(image, outputs), graph_def

    def __call__(self, image: np.ndarray) -> RawDetections:
        if self.input_size and (image.shape[2], image.shape[1]) != self.input_size:
            width, height = self.input_size
            small = np.empty((image.shape[0], height, width, image.shape[3]), np.uint8)
            for frame, out in zip(image, small, strict=True):
                resize_into(frame, self.input_size, out=out)
            image = small
        out = self._call(self._tf.constant(image))
        tensors = [out[name] for name in OUTPUTS] if isinstance(out, dict) else out
        boxes, scores, classes, num = (t.numpy() for t in tensors)
        n = int(num[0])
        return RawDetections(boxes=boxes[0, :n], scores=scores[0, :n], classes=classes[0, :n].astype(np.int64))
