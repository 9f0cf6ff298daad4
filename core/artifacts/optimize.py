"""Convert an SSD frozen graph into a float ``.tflite`` that the LiteRT backend serves without TensorFlow.

Usage::

    python -m core optimize MODEL_DIR [--output FILE]     # prints the written file last

For an installed model (``python -m core fetch`` printed MODEL_DIR) the file goes
beside the graph and into the dir's manifest, so ``BACKEND=tflite`` serves it verified.

What is converted: the network only -- from the resized image to the box encodings and class
scores -- plus TFLite's built-in ``TFLite_Detection_PostProcess`` op for box decoding and
per-class NMS. The graph's own while-loop preprocessor (resize) is cut off because the engine
resizes exactly like it (``core.backends.resize``); its normalisation stays in the network.
Every number the post-processing needs is read from the graph, not assumed: anchors (evaluated
once), box-coder scales, NMS thresholds and sizes, the number of classes.

Conversion needs TensorFlow; serving the result does not. The result is float32 and gives the
TF model's detections (see ``tests/integration/test_optimized_parity.py``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.artifacts.manifest import MANIFEST, check_derivable, record_derived_file
from core.errors import ModelLoadError
from core.ssd.detector import find_model
from core.ssd.engines.postprocess_split import POSTPROCESS_OP
from core.ssd.engines.quiet import import_tensorflow
from core.ssd.engines.tensorflow import fixed_input_size

log = logging.getLogger(__name__)
DEFAULT_NAME = "ssd_float.tflite"
# Node names of the TF Object Detection API's SSD export (model-zoo interface).
IMAGE = "image_tensor"
NORMALISE = "Preprocessor/mul"
BOX_ENCODINGS = "concat"
SCORES = "Postprocessor/convert_scores"
BACKGROUND_SLICE = "Postprocessor/Slice"
ANCHOR_USER = "Postprocessor/Decode/get_center_coordinates_and_sizes/transpose"
# The box coder splits the encodings into ty, tx, th, tw here; each is then divided by its scale
# (RealDiv/Div in a TF1 export, a Mul by the reciprocal once constant-folded).
DECODE_UNSTACK = "Postprocessor/Decode/unstack"
SCALE_OPS = ("RealDiv", "Div", "Mul")
PER_CLASS_NMS_OPS = (
    "NonMaxSuppression",
    "NonMaxSuppressionV2",
    "NonMaxSuppressionV3",
    "NonMaxSuppressionV4",
    "NonMaxSuppressionV5",
)
# Lowest score the TFLite NMS considers. The SSD exports keep every score above 1e-8, so the op's
# per-class NMS sorted and suppressed all 1917 anchors for each of the 90 classes: ~60 ms an image,
# three times the network. NMS per class is greedy from the highest score down, so a box below the
# floor never suppresses one above it: every detection scoring >= the floor is exactly the one the
# graph gives. Only the tail of the 100-box list changes, and only for images whose 100th box
# scores below the floor. At 1e-3 NMS cost ~3 ms a photo, at 0.01 ~0.8 ms (the network: ~17 ms);
# a detection under 1 % confidence is noise to any client, so the float model reports >= 0.01.
NMS_SCORE_FLOOR = 0.01


@dataclass(frozen=True)
class PostProcessing:
    """The SSD post-processing of one graph, in the terms of ``TFLite_Detection_PostProcess``."""

    anchors: np.ndarray  # (N, 4) ycenter, xcenter, height, width
    scales: tuple[float, float, float, float]  # y, x, h, w
    iou_threshold: float
    score_threshold: float
    per_class: int
    total: int

    @property
    def nms_score_threshold(self) -> float:
        """The graph's score threshold, raised to ``NMS_SCORE_FLOOR``."""
        return max(self.score_threshold, NMS_SCORE_FLOOR)

    def implements(self, num_classes: int) -> str:
        """The ``experimental_implements`` signature the TFLite converter turns into the custom op."""
        attrs = {
            "max_detections": self.total,
            "max_classes_per_detection": 1,
            "detections_per_class": self.per_class,
            "use_regular_nms": True,
            "nms_score_threshold": self.nms_score_threshold,
            "nms_iou_threshold": self.iou_threshold,
            "y_scale": self.scales[0],
            "x_scale": self.scales[1],
            "h_scale": self.scales[2],
            "w_scale": self.scales[3],
            "num_classes": num_classes,
        }
        parts = [f'name: "{POSTPROCESS_OP}"']
        for key, value in attrs.items():
            kind = "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
            text = str(value).lower() if kind == "b" else repr(value)
            parts.append(f'attr {{ key: "{key}" value {{ {kind}: {text} }} }}')
        return " ".join(parts)


def convert(model: Path, output: Path | None = None) -> Path:
    """Write the float TFLite version of the frozen graph under ``model``; returns its path."""
    tf = import_tensorflow()

    graph_file, _ = find_model(Path(model), "frozen_graph")
    with saved_detection_model(tf, graph_file, tf.uint8) as (saved, summary, _):
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.allow_custom_ops = True  # TFLite_Detection_PostProcess is a custom op built into LiteRT
        flatbuffer = converter.convert()
    output = Path(output) if output else graph_file.parent / DEFAULT_NAME
    output.write_bytes(flatbuffer)
    log.info("wrote %s (%.1f MB): %s", output, len(flatbuffer) / 1e6, summary)
    return output


@contextmanager
def saved_detection_model(tf, graph_file: Path, input_dtype) -> Iterator[tuple[str, str, tuple[int, int]]]:
    """A temporary SavedModel of the network plus the post-processing op, a one-line summary and
    the network's input (width, height).

    Its input is the resized image, ``[1, H, W, 3]`` of ``input_dtype``: uint8 for the float model
    (cast in the graph), float32 for the int8 one (the quantiser must start at the first op; the
    converter then makes that input uint8 again).
    """
    from google.protobuf.message import DecodeError  # protobuf comes with TensorFlow

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(graph_file).read_bytes())
    except DecodeError:
        raise ModelLoadError(f"{graph_file} is not a TensorFlow frozen graph") from None
    nodes = {n.name: n for n in graph_def.node}
    _require(nodes, graph_file, IMAGE, NORMALISE, BOX_ENCODINGS, SCORES, BACKGROUND_SLICE, ANCHOR_USER, DECODE_UNSTACK)
    size = fixed_input_size(graph_def)
    if size is None:
        raise ModelLoadError(
            f"{graph_file}: the preprocessor is not one bilinear resize to a fixed size that the engine reproduces"
        )
    width, height = size
    cut = _resized_image(nodes)
    post = _post_processing(tf, graph_def, nodes, (height, width), graph_file)

    network = _network(tf, graph_def, cut, (height, width))
    num_classes = int(network.outputs[1].shape[-1]) - 1  # column 0 is the background
    anchors = tf.constant(post.anchors)

    @tf.function(experimental_implements=post.implements(num_classes))
    def postprocess(box_encodings, class_scores, anchor_boxes):
        # A stub: the converter replaces this whole function by the TFLite op named above.
        del box_encodings, class_scores, anchor_boxes
        return (
            tf.constant(0.0, name="boxes"),
            tf.constant(0.0, name="classes"),
            tf.constant(0.0, name="scores"),
            tf.constant(0.0, name="num_detections"),
        )

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], input_dtype, name="image")])
    def detect(image):
        box_encodings, class_scores = network(tf.cast(image, tf.float32))
        return postprocess(tf.reshape(box_encodings, [1, -1, 4]), class_scores, anchors)

    summary = (
        f"{width}x{height} input, {len(post.anchors)} anchors, {num_classes} classes, scales {post.scales}, "
        f"NMS iou {post.iou_threshold:.2f} score {post.nms_score_threshold:g}, "
        f"{post.per_class} per class, {post.total} boxes"
    )
    with tempfile.TemporaryDirectory(prefix="ssd-optimize-") as tmp:
        module = tf.Module()
        module.detect = detect
        tf.saved_model.save(module, tmp, signatures={"serving_default": detect.get_concrete_function()})
        yield tmp, summary, (width, height)


def _require(nodes: dict, path: Path, *names: str) -> None:
    missing = [name for name in names if name not in nodes]
    if missing:
        raise ModelLoadError(f"{path} is not an SSD export this converter knows (missing {', '.join(missing)})")


def _const(nodes: dict, name: str) -> np.ndarray:
    from tensorflow.python.framework import tensor_util

    node = nodes[name.split(":")[0].lstrip("^")]
    if node.op != "Const":
        raise ModelLoadError(f"expected {node.name} to be a constant, it is a {node.op}")
    return tensor_util.MakeNdarray(node.attr["value"].tensor)


def _resized_image(nodes: dict) -> str:
    """The tensor the normalisation reads: the preprocessor's resized image, where the cut goes."""
    inputs = [name for name in nodes[NORMALISE].input if nodes[name.split(":")[0]].op != "Const"]
    return inputs[0]


def _post_processing(tf, graph_def, nodes: dict, size: tuple[int, int], path: Path) -> PostProcessing:
    begin = _const(nodes, nodes[BACKGROUND_SLICE].input[1])
    if list(begin) != [0, 0, 1]:
        raise ModelLoadError(f"{path}: expected the scores' column 0 to be the background class")
    scales = _coder_scales(graph_def, nodes, path)
    per_class, total, iou, score = _nms(graph_def, nodes, path)
    # Anchors may be a constant or computed from the image shape: evaluate them once, for this input size.
    anchor_tensor = nodes[ANCHOR_USER].input[0]
    corners = _evaluate(tf, graph_def, f"{IMAGE}:0", _tensor(anchor_tensor), np.zeros((1, *size, 3), np.uint8))
    corners = corners.reshape(-1, 4).astype(np.float64)
    ymin, xmin, ymax, xmax = corners.T
    anchors = np.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=1)
    return PostProcessing(
        anchors=anchors.astype(np.float32),
        scales=(round(scales[0], 6), round(scales[1], 6), round(scales[2], 6), round(scales[3], 6)),
        iou_threshold=float(iou),
        score_threshold=float(score),
        per_class=int(per_class),
        total=int(total),
    )


def _node(nodes: dict, name: str):
    return nodes[name.split(":")[0].lstrip("^")]


def _const_through(nodes: dict, name: str) -> np.ndarray | None:
    """The value of a constant, looking through Identity/Enter (TF1 while-loop frames); None if computed."""
    from tensorflow.python.framework import tensor_util

    node = _node(nodes, name)
    while node.op in ("Identity", "Enter") and node.input:
        node = _node(nodes, node.input[0])
    return tensor_util.MakeNdarray(node.attr["value"].tensor) if node.op == "Const" else None


def _consumers(graph_def) -> dict[str, list]:
    """Tensor name (``node:k``) -> the nodes that read it."""
    users: dict[str, list] = {}
    for node in graph_def.node:
        for name in node.input:
            if not name.startswith("^"):
                users.setdefault(_tensor(name), []).append(node)
    return users


def _coder_scales(graph_def, nodes: dict, path: Path) -> list[float]:
    """y, x, h, w scales: the constant that divides (or, as its reciprocal, multiplies) ``unstack:k``."""
    users = _consumers(graph_def)
    scales = []
    for k, what in enumerate(("ty", "tx", "th", "tw")):
        found = [n for n in users.get(f"{DECODE_UNSTACK}:{k}", []) if n.op in SCALE_OPS]
        if len(found) != 1:
            readers = [f"{n.name} ({n.op})" for n in users.get(f"{DECODE_UNSTACK}:{k}", [])] or ["nothing"]
            raise ModelLoadError(
                f"{path}: cannot read the box coder's {what} scale: {DECODE_UNSTACK}:{k} is read by "
                f"{', '.join(readers)}; expected one {'/'.join(SCALE_OPS)} by a constant"
            )
        node = found[0]
        if node.op != "Mul" and _tensor(node.input[0]) != f"{DECODE_UNSTACK}:{k}":
            raise ModelLoadError(f"{path}: {node.name} divides a constant by the {what} encoding, not the reverse")
        other = [name for name in node.input if _tensor(name) != f"{DECODE_UNSTACK}:{k}"]
        value = _const_through(nodes, other[0]) if len(other) == 1 else None
        if value is None or value.size != 1 or float(value) == 0.0:
            raise ModelLoadError(f"{path}: the {what} scale {node.name} ({node.op}) is not by a non-zero constant")
        scales.append(1.0 / float(value) if node.op == "Mul" else float(value))
    return scales


def _nms(graph_def, nodes: dict, path: Path) -> tuple[int, int, float, float]:
    """(per class, total, IoU threshold, score threshold) of the graph's NMS.

    Either one ``CombinedNonMaxSuppression`` (boxes, scores, per class, total, iou, score), or the
    TF1 ``BatchMultiClassNonMaxSuppression`` while-loop: one ``NonMaxSuppressionV*`` per class whose
    size is ``Minimum(per class, n)``, and the total kept by ``MultiClassNonMaxSuppression/range``
    (the gather of the score-sorted boxes), limited by ``Minimum(total, n)``.
    """
    combined = [n for n in graph_def.node if n.op == "CombinedNonMaxSuppression"]
    per_class_ops = [n for n in graph_def.node if n.op in PER_CLASS_NMS_OPS]
    if len(combined) == 1:
        values = [_const_through(nodes, name) for name in combined[0].input[2:6]]
        if any(v is None for v in values):
            raise ModelLoadError(f"{path}: the parameters of {combined[0].name} are not all constants")
        numbers = [float(v) for v in values if v is not None]
        return int(numbers[0]), int(numbers[1]), numbers[2], numbers[3]
    if combined or not per_class_ops:
        ops = sorted({n.op for n in graph_def.node if "NonMaxSuppression" in n.op}) or ["none"]
        raise ModelLoadError(
            f"{path}: expected one CombinedNonMaxSuppression or the TF1 per-class NonMaxSuppressionV* loop; "
            f"found {len(combined)} CombinedNonMaxSuppression and NMS ops: {', '.join(ops)}"
        )
    found: set[tuple[int, float, float]] = set()
    for node in per_class_ops:
        if len(node.input) < 4 or (node.op != "NonMaxSuppressionV2" and len(node.input) < 5):
            raise ModelLoadError(f"{path}: {node.name} ({node.op}) has no IoU/score threshold inputs")
        size = _node(nodes, node.input[2])
        limits = (
            [_const_through(nodes, n) for n in size.input]
            if size.op == "Minimum"
            else [_const_through(nodes, node.input[2])]
        )
        sizes = [v for v in limits if v is not None]
        iou_value = _const_through(nodes, node.input[3])
        score_value = (
            _const_through(nodes, node.input[4])
            if node.op not in ("NonMaxSuppression", "NonMaxSuppressionV2")
            else np.asarray(-np.inf)
        )
        if len(sizes) != 1 or iou_value is None or score_value is None:
            raise ModelLoadError(f"{path}: the size or thresholds of {node.name} ({node.op}) are not constants")
        found.add((int(sizes[0]), float(iou_value), float(score_value)))
    if len(found) != 1:
        raise ModelLoadError(f"{path}: the per-class NMS ops disagree: {sorted(found)}")
    per_class, iou, score = found.pop()
    totals: set[int] = set()
    for node in graph_def.node:
        if node.op == "Range" and node.name.endswith("MultiClassNonMaxSuppression/range"):
            limit = _node(nodes, node.input[1])
            names = limit.input if limit.op == "Minimum" else [node.input[1]]
            totals |= {int(v) for v in (_const_through(nodes, n) for n in names) if v is not None}
    if len(totals) != 1:
        raise ModelLoadError(
            f"{path}: found {len(per_class_ops)} {per_class_ops[0].op} op(s) but cannot read the total number of "
            f"detections (a constant limit of MultiClassNonMaxSuppression/range); candidates: {sorted(totals)}"
        )
    return per_class, totals.pop(), iou, score


def _tensor(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _imported(tf, graph_def):
    def _import():
        tf.compat.v1.import_graph_def(graph_def, name="")

    return tf.compat.v1.wrap_function(_import, [])


def _evaluate(tf, graph_def, feed: str, fetch: str, value: np.ndarray) -> np.ndarray:
    return _imported(tf, graph_def).prune(feed, fetch)(tf.constant(value)).numpy()


def _network(tf, graph_def, cut: str, size: tuple[int, int]):
    """The graph from the resized float image to (box encodings, class scores), as a function."""
    cut_node = cut.split(":")[0]
    trimmed = tf.compat.v1.GraphDef()
    for node in graph_def.node:
        if node.name == cut_node:  # the resized image becomes the input
            placeholder = trimmed.node.add(name=cut_node, op="Placeholder")
            placeholder.attr["dtype"].type = tf.float32.as_datatype_enum
            placeholder.attr["shape"].shape.CopyFrom(tf.TensorShape([1, *size, 3]).as_proto())
        else:
            trimmed.node.add().CopyFrom(node)
    trimmed = tf.compat.v1.graph_util.extract_sub_graph(trimmed, [BOX_ENCODINGS, SCORES])
    return _imported(tf, _split_add_n(tf, trimmed)).prune(_tensor(cut), [f"{BOX_ENCODINGS}:0", f"{SCORES}:0"])


def _split_add_n(tf, graph_def):
    """The graph with every ``AddN`` turned into a chain of two-input adds.

    TFLite's ADD_N has no XNNPACK kernel, so each of SSDLite's ten AddN ops cut the network into
    another delegate partition (12 in all); as plain ADDs XNNPACK runs the network as one piece.
    """
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    taken = {node.name for node in graph_def.node}
    for node in graph_def.node:
        operands = [name for name in node.input if not name.startswith("^")]
        if node.op != "AddN" or len(operands) < 2:
            out.node.add().CopyFrom(node)
            continue
        controls = [name for name in node.input if name.startswith("^")]
        total = operands[0]
        for k, operand in enumerate(operands[1:], start=1):
            last = k == len(operands) - 1
            name = node.name if last else f"{node.name}/add_{k}"
            if not last and name in taken:
                raise ModelLoadError(f"cannot split {node.name}: the graph already has a node {name}")
            add = out.node.add(
                name=name, op="AddV2", input=[total, operand] + (controls if k == 1 else []), device=node.device
            )
            add.attr["T"].CopyFrom(node.attr["T"])
            total = add.name
    return out


def optimize(model: Path, output: Path | None = None) -> Path:
    """Convert, prove the file loads in the serving runtime, and record it in the model's manifest
    when ``model`` is an installed model dir (so the service re-verifies it like the fetched files)."""
    root = Path(model).resolve()
    installed = (root / MANIFEST).is_file()
    if installed and output and Path(output).resolve().is_relative_to(root):
        check_derivable(root, Path(output).resolve().relative_to(root).as_posix())  # before writing
    written = convert(model, output)
    from core.ssd.engines.litert import TFLiteEngine

    TFLiteEngine(written)
    if installed and written.resolve().is_relative_to(root):
        record_derived_file(root, written.resolve().relative_to(root).as_posix())
    return written
