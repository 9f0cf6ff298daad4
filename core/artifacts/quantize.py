"""Calibrated post-training int8 version of an SSD frozen graph (``python -m core optimize --int8``).

The network (weights per-channel signed int8, activations int8) is the same cut as the float
model of :mod:`core.artifacts.optimize`, with the same float ``TFLite_Detection_PostProcess``
after it (same anchors, scales, NMS thresholds, score floor and number of boxes), so the service
reads both the same way. The input is uint8 ``[1,H,W,3]`` at scale 1 / zero point 0: the
engine writes the resized pixels into it unchanged (it refuses any other input quantisation).

How the activation ranges are found (see ``docs/performance.md`` for the measurements):

* Calibration photos ship with the project (``assets/calibration``, CC0), so the conversion runs
  anywhere, the Docker build included. :data:`CALIBRATION_IMAGES` images are made from them
  with seeded crops, flips and brightness/contrast changes.
* The float model is run photo by photo and every tensor's min/max is recorded per photo. The
  range used is the :data:`PERCENTILE` th percentile of the per-photo maxima (and the matching
  one of the minima), not the global min/max: a few photos drive the late residual adds to
  ranges four times the usual, which costs every other photo resolution (the global min/max
  lost 0.01 AP50 on COCO and got worse with more data). The image input and the fixed
  normalisation keep their full range, so the input stays exactly 0..255 at scale 1.
* A few layers stay float (:data:`KEEP_FLOAT`): by default the 1st and 3rd depthwise
  convolution of the network in execution order (in SSD-MobileNet v2 ``expanded_conv`` and
  ``expanded_conv_2``: the two layers whose int8 error was largest, measured with TensorFlow's
  quantisation debugger). They cost ~0.6 ms and bring the detections measurably closer to the
  float model's. Rules are by op and position, so they mean the same in any graph; a rule
  that matches nothing is an error, not silently ignored.

The result is a pure function of the graph, the photos and these settings: converting twice
gives the same bytes (a test checks it). Conversion needs TensorFlow; serving does not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.artifacts.manifest import MANIFEST, check_derivable, record_derived_file
from core.artifacts.optimize import optimize, saved_detection_model
from core.assets import ASSETS_DIR
from core.errors import ModelLoadError
from core.ssd.detector import find_model
from core.ssd.engines.resize import resize_into

log = logging.getLogger(__name__)

DEFAULT_NAME = "ssd_int8.tflite"
CALIBRATION_DIR = ASSETS_DIR / "calibration"
CALIBRATION_IMAGES = 100
SEED = 0
PERCENTILE = 90.0
#: Ops kept float, as ``OP_NAME:k`` = the k-th (0-based) op of that type in execution order.
KEEP_FLOAT: tuple[str, ...] = ("DEPTHWISE_CONV_2D:0", "DEPTHWISE_CONV_2D:2")
#: Tensors whose range must stay the full one over every photo: the normalisation right after the
#: uint8 input (an input range other than 0..255 would change the input's scale).
FULL_RANGE_PREFIXES = ("Preprocessor/",)


@dataclass(frozen=True)
class Calibration:
    """What the activation ranges are measured on and how they are aggregated."""

    directory: Path = CALIBRATION_DIR
    images: int = CALIBRATION_IMAGES
    seed: int = SEED
    percentile: float = PERCENTILE
    keep_float: tuple[str, ...] = KEEP_FLOAT


def photos(directory: Path = CALIBRATION_DIR) -> list[np.ndarray]:
    """The calibration photos as RGB uint8 arrays, in file-name order."""
    from PIL import Image

    files = sorted(Path(directory).glob("*.png"))
    if not files:
        raise ModelLoadError(f"no calibration photos (*.png) in {directory}")
    out = []
    for path in files:
        with Image.open(path) as image:
            out.append(np.asarray(image.convert("RGB")))
    return out


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = np.empty((size[1], size[0], 3), np.uint8)
    resize_into(np.ascontiguousarray(image), size, out)
    return out


def calibration_images(size: tuple[int, int], calibration: Calibration = Calibration()) -> list[np.ndarray]:
    """``calibration.images`` network inputs (width, height) = ``size``: the photos, then seeded
    random crops (30-100 % of a side), mirror images and brightness/contrast changes of them."""
    base = photos(calibration.directory)
    rng = np.random.default_rng(calibration.seed)
    out = [_resized(p, size) for p in base]
    while len(out) < calibration.images:
        photo = base[len(out) % len(base)]
        h, w = photo.shape[:2]
        side = rng.uniform(0.3, 1.0)
        ch = max(32, int(h * side * rng.uniform(0.75, 1.0)))
        cw = max(32, int(w * side * rng.uniform(0.75, 1.0)))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = photo[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.3:
            gain, offset = rng.uniform(0.6, 1.3), rng.uniform(-25, 25)
            crop = np.clip(crop.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        out.append(_resized(crop, size))
    return out[: calibration.images]


def convert_int8(graph_file: Path, output: Path, calibration: Calibration = Calibration()) -> Path:
    """Write the calibrated int8 ``.tflite`` of ``graph_file`` to ``output``; returns ``output``."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as tflite_convert

    log.info("int8: building the network from %s", graph_file)
    with saved_detection_model(tf, graph_file, tf.float32) as (saved, summary, (width, height)):
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.allow_custom_ops = True  # TFLite_Detection_PostProcess
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.inference_input_type = tf.uint8
        # The converter's own calibration only marks which tensors need ranges; they are measured below.
        converter.representative_dataset = lambda: iter([[np.zeros((1, height, width, 3), np.float32)]])
        converter._experimental_calibrate_only = True
        calibrated = converter.convert()
    images = calibration_images((width, height), calibration)
    ranges = _measured_ranges(calibrated, images, calibration.percentile)
    calibrated = _with_ranges(calibrated, ranges)
    keep = _keep_float(calibrated, calibration.keep_float)
    log.info("int8: quantising (%d tensors ranged, %d kept float)", len(ranges), len(keep))
    flatbuffer = tflite_convert.mlir_quantize(
        calibrated,
        disable_per_channel=False,
        input_data_type=tf.uint8,
        output_data_type=tf.float32,
        denylisted_nodes=keep or None,
    )
    output = Path(output)
    output.write_bytes(flatbuffer)
    log.info(
        "wrote %s (%.1f MB): int8, %d calibration images (seed %d, p%g ranges), float: %s; %s",
        output,
        len(flatbuffer) / 1e6,
        len(images),
        calibration.seed,
        calibration.percentile,
        ", ".join(name.split(";")[0] for name in keep) or "none",  # each fused op's first tensor names it
        summary,
    )
    return output


def _model(flatbuffer: bytes):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(flatbuffer)


def _ranged_tensors(model) -> dict[str, object]:
    """Name -> tensor of every tensor of the main subgraph that the calibration gave a range."""
    tensors = {}
    for tensor in model.subgraphs[0].tensors:
        q = tensor.quantization
        if q is not None and q.min is not None and len(q.min):
            name = tensor.name.decode()
            if name in tensors:
                raise ModelLoadError(f"two calibrated tensors are named {name}")
            tensors[name] = tensor
    return tensors


def _measured_ranges(calibrated: bytes, images: Sequence[np.ndarray], percentile: float) -> dict[str, tuple]:
    """Tensor name -> (min, max): the percentile of per-image extremes over ``images``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model = _model(calibrated)
    names = list(_ranged_tensors(model))
    graph = model.subgraphs[0]
    inputs = {graph.tensors[i].name.decode() for i in graph.inputs}
    interpreter = Interpreter(
        model_content=bytes(calibrated),
        num_threads=1,
        experimental_preserve_all_tensors=True,
        # Reference kernels: the ranges must not depend on which SIMD path a machine takes.
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    index: dict[str, int] = {}
    for detail in interpreter.get_tensor_details():
        index.setdefault(detail["name"], detail["index"])
    missing = [name for name in names if name not in index]
    if missing:
        raise ModelLoadError(f"calibration cannot read tensors {missing[:3]}")
    lows = np.empty((len(images), len(names)), np.float64)
    highs = np.empty_like(lows)
    source = interpreter.get_input_details()[0]["index"]
    for i, image in enumerate(images):
        if i % 25 == 0:
            log.info("calibrating: image %d of %d", i + 1, len(images))
        interpreter.set_tensor(source, image[None].astype(np.float32))
        interpreter.invoke()
        for j, name in enumerate(names):
            value = interpreter.get_tensor(index[name])
            lows[i, j], highs[i, j] = float(value.min()), float(value.max())
    ranges = {}
    for j, name in enumerate(names):
        if name in inputs:
            ranges[name] = (0.0, 255.0)  # uint8 pixels: scale 1, zero point 0
        elif name.startswith(FULL_RANGE_PREFIXES):
            ranges[name] = (lows[:, j].min(), highs[:, j].max())
        else:
            ranges[name] = (np.percentile(lows[:, j], 100 - percentile), np.percentile(highs[:, j], percentile))
    return {name: (float(np.float32(lo)), float(np.float32(hi))) for name, (lo, hi) in ranges.items()}


def _with_ranges(calibrated: bytes, ranges: dict[str, tuple]) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    model = _model(calibrated)
    for name, tensor in _ranged_tensors(model).items():
        low, high = ranges[name]
        tensor.quantization.min = np.asarray([low], np.float32)  # type: ignore[attr-defined]
        tensor.quantization.max = np.asarray([high], np.float32)  # type: ignore[attr-defined]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _keep_float(calibrated: bytes, rules: Sequence[str]) -> list[str]:
    """The output tensor names (what the quantiser's deny list takes) of the ops ``rules`` name."""
    model = _model(calibrated)
    graph = model.subgraphs[0]
    codes: dict[str, list] = {}
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = max(code.builtinCode, code.deprecatedBuiltinCode)
        codes.setdefault(names.get(kind, str(kind)), []).append(op)
    kept = []
    for rule in rules:
        kind, _, position = rule.partition(":")
        ops = codes.get(kind, [])
        try:
            op = ops[int(position)]
        except (ValueError, IndexError):
            raise ModelLoadError(
                f"keep-float rule {rule!r} matches no op: the network has {len(ops)} {kind} op(s)"
            ) from None
        kept += [graph.tensors[i].name.decode() for i in op.outputs]
    return kept


@dataclass(frozen=True)
class Gate:
    """How closely the int8 model must reproduce the float one on the shipped photos.

    Every float detection scoring >= ``reference_score`` needs an int8 detection of the same
    class scoring >= ``candidate_score`` with IoU >= 0.5; of those matched, the mean IoU and the
    mean score difference are bounded too. The float model is the reference because it gives
    the TF graph's detections (``tests/integration/test_optimized_parity.py``).

    Calibrated on the research models (SSDLite v2, 10 views, 54 float detections >= 0.1): the
    shipped recipe matches 54 with mean IoU 0.93 and score gap 0.02; per-tensor weights (which
    lose 0.07 COCO AP) match 38 (0.70) with mean IoU 0.84, and fail.
    """

    reference_score: float = 0.1
    candidate_score: float = 0.05
    min_recall: float = 0.9
    min_mean_iou: float = 0.88
    max_mean_score_gap: float = 0.05


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    y0, x0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    y1, x1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area - inter, 1e-12)


def agreement(float_file: Path, int8_file: Path, gate: Gate = Gate(), directory: Path = CALIBRATION_DIR) -> dict:
    """Compare the two models on the shipped photos and their mirror images; the gate's verdict.

    Returns what the manifest records: ``passed``, the measured figures and, when it fails, why.
    """
    from core.ssd.engines.litert import TFLiteEngine

    reference_model, candidate_model = TFLiteEngine(float_file, 1), TFLiteEngine(int8_file, 1)
    images = [view for p in photos(directory) for view in (p, np.ascontiguousarray(p[:, ::-1]))]
    references = matched = 0
    ious: list[float] = []
    gaps: list[float] = []
    for image in images:
        ref, cand = reference_model(image[None]), candidate_model(image[None])
        boxes = np.clip(cand.boxes, 0.0, 1.0)
        used = np.zeros(len(cand.scores), bool)
        for k in np.flatnonzero(ref.scores >= gate.reference_score):
            references += 1
            options = np.flatnonzero((cand.classes == ref.classes[k]) & ~used & (cand.scores >= gate.candidate_score))
            if not len(options):
                continue
            overlaps = _iou(np.clip(ref.boxes[k], 0.0, 1.0), boxes[options])
            best = int(np.argmax(overlaps))
            if overlaps[best] >= 0.5:
                used[options[best]] = True
                matched += 1
                ious.append(float(overlaps[best]))
                gaps.append(abs(float(cand.scores[options[best]]) - float(ref.scores[k])))
    recall = matched / references if references else 0.0
    mean_iou = float(np.mean(ious)) if ious else 0.0
    mean_gap = float(np.mean(gaps)) if gaps else 1.0
    failures = []
    if references == 0:
        failures.append(f"the float model finds nothing scoring >= {gate.reference_score} on the photos")
    if recall < gate.min_recall:
        failures.append(f"found {matched} of the float model's {references} detections (< {gate.min_recall:.0%})")
    if mean_iou < gate.min_mean_iou:
        failures.append(f"mean IoU {mean_iou:.3f} < {gate.min_mean_iou}")
    if mean_gap > gate.max_mean_score_gap:
        failures.append(f"mean score difference {mean_gap:.3f} > {gate.max_mean_score_gap}")
    return {
        "gate": "int8 agrees with float on the calibration photos",
        "passed": not failures,
        "reason": "; ".join(failures),
        "images": len(images),
        "reference_detections": references,
        "matched": matched,
        "mean_iou": round(mean_iou, 4),
        "mean_score_gap": round(mean_gap, 4),
    }


def optimize_int8(
    model: Path, calibration: Calibration | None = None, gate: Gate | None = None
) -> tuple[Path, Path, dict]:
    """The float model (as :func:`optimize`) and the calibrated int8 one beside it
    , with the int8-vs-float accuracy gate's verdict; for an
    installed model dir both go into its manifest, the verdict with the int8 file.

    A model that fails the gate is still written (and recorded as failed): the service then
    serves the float file instead and says so.
    """
    from core.ssd.engines.litert import TFLiteEngine

    root = Path(model).resolve()
    installed = (root / MANIFEST).is_file()
    float_file = optimize(model)  # the fallback, and the gate's reference
    int8_file = float_file.parent / DEFAULT_NAME
    if installed:
        check_derivable(root, int8_file.resolve().relative_to(root).as_posix())
    graph_file, _ = find_model(Path(model), "frozen_graph")
    convert_int8(graph_file, int8_file, calibration or Calibration())
    TFLiteEngine(int8_file)
    log.info("int8: checking it against the float model on the calibration photos")
    verdict = agreement(float_file, int8_file, gate or Gate())
    if verdict["passed"]:
        log.info("int8 passes the accuracy gate: %s", verdict)
    else:
        log.warning(
            "int8 FAILS the accuracy gate (%s); BACKEND=tflite-int8 will serve the float model", verdict["reason"]
        )
    if installed:
        record_derived_file(root, int8_file.resolve().relative_to(root).as_posix(), check=verdict)
    return float_file, int8_file, verdict
