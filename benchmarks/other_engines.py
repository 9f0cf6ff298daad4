"""Does ONNX Runtime or OpenVINO run the SSD network faster than LiteRT/XNNPACK at the same accuracy? (P6)

    python benchmarks/other_engines.py [MODEL_DIR] [--runs 200] [--threads 1 2] [--work DIR] [--coco]

``--coco`` adds every engine's COCO AP on ``../shared/coco/val2017-206`` (~2 min); ``--runs 0``
skips the timing. Default MODEL_DIR: ``assets/models/custom-6165257e5596/ssdlite_mobilenet_v2_coco``.

MODEL_DIR is an installed, optimised model (``python -m core optimize MODEL_DIR --int8`` wrote
``ssd_float.tflite`` and ``ssd_int8.tflite`` there); it is only read. Compared is the network
only -- the resized 300x300 uint8 image in, box encodings and class scores out -- exactly the
network the service runs: the ``TFLite_Detection_PostProcess`` op is cut off the two served
files, the float one is converted to ONNX from that cut file, so every engine runs the same weights.

* ``litert-float``, ``litert-int8``: the cut served files on LiteRT with XNNPACK (what we serve).
* ``ort-float``: tf2onnx's ONNX of the float file on ONNX Runtime (CPU EP).
* ``ort-int8``: that ONNX quantised statically by ``onnxruntime.quantization`` (QDQ, int8 weights
  per channel, int8 activations, MinMax ranges over the same 100 seeded views of the CC0 photos in
  ``assets/calibration`` that the LiteRT int8 model is calibrated on); ``ort-u8s8``: the same with
  uint8 activations (ORT's recommendation for x86 CPUs without VNNI).
* ``ov-float`` (f32 forced), ``ov-bf16`` (OpenVINO's default on a CPU with AMX/AVX512-BF16):
  OpenVINO reading the float ``.tflite`` directly; ``ov-int8``: OpenVINO running the QDQ ONNX.

Per thread count, all engines are timed in one process, interleaved (each round runs every engine
once, in a rotating order), median and p90 over ``--runs`` rounds after a warm-up. Accuracy: every
engine's outputs on the photos of ``assets/calibration`` and ``../shared/images`` against the
LiteRT float network (max |delta| of the class scores, and the detections >= 0.5 after the same
NumPy post-processing: same labels, IoU of the boxes). The NumPy post-processing (decode + per-class
NMS with the served op's parameters, read from the file) is what the other engines would need in
Python; it is timed and checked against the op's own detections.

Needs, besides the project's venv (TensorFlow, ai-edge-litert): ``onnx onnxruntime openvino`` and
``tf2onnx`` (installed ``--no-deps``: its pins would replace TensorFlow's protobuf). Without them it
says so and exits 0. Measured with a separate venv that sees the project's packages::

    python3.11 -m venv /tmp/engines/venv
    echo /work/main/.venv/lib/python3.11/site-packages > /tmp/engines/venv/lib/python3.11/site-packages/project.pth
    /tmp/engines/venv/bin/pip install onnx onnxruntime openvino && /tmp/engines/venv/bin/pip install --no-deps tf2onnx
    nice /tmp/engines/venv/bin/python benchmarks/other_engines.py --work /tmp/engines/run          # speed + photos
    nice /tmp/engines/venv/bin/python benchmarks/other_engines.py --work /tmp/engines/run --coco --runs 0  # + AP
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

from core.ssd.engines.postprocess_split import POSTPROCESS_OP  # noqa: E402 - needs ROOT on sys.path

DEFAULT_MODEL = ROOT / "assets/models/custom-6165257e5596/ssdlite_mobilenet_v2_coco"
NEEDED = ("tensorflow", "ai_edge_litert", "onnx", "onnxruntime", "openvino", "tf2onnx")
SIZE = (300, 300)


# --- the network, cut from the served files ------------------------------------------------------


def cut_network(served: Path, output: Path) -> dict:
    """Write ``served`` without its post-processing op (outputs: box encodings, class scores), cut
    as the service's engine cuts it; returns the op's parameters and anchors."""
    from ai_edge_litert import schema_py_generated as schema
    from flatbuffers import flexbuffers

    from core.errors import ModelLoadError
    from core.ssd.engines.postprocess_split import split_postprocess

    try:
        halves = split_postprocess(served.read_bytes(), str(served))
    except ModelLoadError as exc:
        raise SystemExit(str(exc)) from None
    output.write_bytes(halves.network)
    tail = schema.ModelT.InitFromPackedBuf(halves.postprocess, 0)
    graph = tail.subgraphs[0]
    (op,) = graph.operators
    params = dict(flexbuffers.Loads(bytes(op.customOptions)))
    anchors = tail.buffers[graph.tensors[op.inputs[2]].buffer].data
    params["anchors"] = np.frombuffer(bytes(anchors), np.float32).reshape(-1, 4)
    return params


def to_onnx(tflite: Path, output: Path) -> None:
    import tf2onnx

    tf2onnx.convert.from_tflite(str(tflite), opset=17, output_path=str(output))


def quantise_onnx(source: Path, output: Path, images: list[np.ndarray], activations: str = "QInt8") -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            import onnx

            self.name = onnx.load(str(source)).graph.input[0].name
            self.left = iter(images)

        def get_next(self):
            image = next(self.left, None)
            return None if image is None else {self.name: image[None]}

    quantize_static(
        str(source),
        str(output),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=getattr(QuantType, activations),
        weight_type=QuantType.QInt8,
    )


# --- engines: each a function image -> (box encodings [1917, 4], class scores [1917, 91]) -----------

Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def litert(path: Path, threads: int) -> Runner:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    boxes, scores = (d["index"] for d in interpreter.get_output_details())

    def run(image):
        interpreter.set_tensor(source, image[None])
        interpreter.invoke()
        return interpreter.get_tensor(boxes)[0], interpreter.get_tensor(scores)[0]

    return run


def litert_full(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The served file with the op: image -> detections (class, score, ymin, xmin, ymax, xmax)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    (post,) = [op for op in interpreter._get_ops_details() if op["op_name"] == POSTPROCESS_OP]
    outputs = [int(i) for i in post["outputs"]]

    def run(image):
        interpreter.set_tensor(source, image[None])
        interpreter.invoke()
        boxes, classes, scores, count = (interpreter.get_tensor(i) for i in outputs)
        n = int(count.reshape(-1)[0])
        return np.column_stack([classes[0, :n] + 1, scores[0, :n], boxes[0, :n]])

    return run


def onnxruntime(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    order = _output_order([o.name for o in session.get_outputs()])

    def run(image):
        out = session.run(None, {name: image[None]})
        return out[order[0]][0], out[order[1]][0]

    return run


def openvino(path: Path, threads: int, precision: str | None) -> Runner:
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    order = _output_order([o.get_any_name() for o in compiled.outputs])

    def run(image):
        out = request.infer({0: image[None]})
        values = list(out.values())
        return values[order[0]][0], values[order[1]][0]

    return run


def _output_order(names: list[str]) -> tuple[int, int]:
    scores = [k for k, name in enumerate(names) if "scores" in name]
    if len(names) != 2 or len(scores) != 1:
        raise SystemExit(f"unexpected outputs {names}")
    return 1 - scores[0], scores[0]


# --- the post-processing in NumPy (what ONNX Runtime / OpenVINO would need) ----------------------


def postprocess(encodings: np.ndarray, scores: np.ndarray, p: dict) -> np.ndarray:
    """TFLite_Detection_PostProcess with regular (per-class) NMS: rows (class, score, box), best first."""
    a = p["anchors"]
    y = encodings[:, 0] / p["y_scale"] * a[:, 2] + a[:, 0]
    x = encodings[:, 1] / p["x_scale"] * a[:, 3] + a[:, 1]
    h = np.exp(encodings[:, 2] / p["h_scale"]) * a[:, 2]
    w = np.exp(encodings[:, 3] / p["w_scale"]) * a[:, 3]
    boxes = np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=1)
    floor, iou_limit = p["nms_score_threshold"], p["nms_iou_threshold"]
    per_class, total = p.get("detections_per_class", 100), p["max_detections"]  # the op's default: 100
    rows, cols = np.nonzero(scores[:, 1:] >= floor)
    if not len(rows):
        return np.zeros((0, 6), np.float32)
    s = scores[rows, cols + 1]
    order = np.argsort(-s, kind="stable")
    rows, cols, s = rows[order], cols[order], s[order]
    # One greedy pass over every class at once, best score first: boxes are shifted apart by class so
    # that no two classes overlap, which makes it the per-class NMS; it stops at the op's total.
    b = boxes[rows] + 4.0 * cols[:, None]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    alive = np.ones(len(rows), bool)
    kept: list[int] = []
    count = np.zeros(scores.shape[1], int)
    for i in range(len(rows)):
        if not alive[i] or count[cols[i]] >= per_class:
            continue
        kept.append(i)
        count[cols[i]] += 1
        if len(kept) == total:
            break
        yx1 = np.maximum(b[i, :2], b[i + 1 :, :2])
        yx2 = np.minimum(b[i, 2:], b[i + 1 :, 2:])
        inter = np.prod(np.clip(yx2 - yx1, 0, None), axis=1)
        alive[i + 1 :] &= inter <= iou_limit * (area[i] + area[i + 1 :] - inter)
    k = np.asarray(kept)
    return np.column_stack([cols[k] + 1.0, s[k], boxes[rows[k]]])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    yx1, yx2 = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(yx2 - yx1, 0, None)))
    union = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2])) - inter
    return inter / union if union > 0 else 0.0


def compare(reference: np.ndarray, other: np.ndarray, threshold: float = 0.5) -> tuple[bool, float, float]:
    """(same labels >= threshold, lowest IoU of matched boxes, largest |delta score|), greedy by order."""
    r, o = reference[reference[:, 1] >= threshold], other[other[:, 1] >= threshold]
    if sorted(r[:, 0].tolist()) != sorted(o[:, 0].tolist()):
        return False, 0.0, 1.0
    worst_iou, worst_score, used = 1.0, 0.0, set()
    for row in r:
        best = max(
            (j for j in range(len(o)) if j not in used and o[j, 0] == row[0]),
            key=lambda j: _iou(row[2:], o[j, 2:]),
        )
        used.add(best)
        worst_iou = min(worst_iou, _iou(row[2:], o[best, 2:]))
        worst_score = max(worst_score, abs(float(row[1] - o[best, 1])))
    return True, worst_iou, worst_score


# --- main -------------------------------------------------------------------------------------------


def photos() -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    from core.ssd.engines.resize import resize_into

    files = sorted((ROOT / "assets/calibration").glob("*.png")) + sorted((SHARED / "images").glob("*.jpg"))
    out = []
    for path in files:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        frame = np.empty((SIZE[1], SIZE[0], 3), np.uint8)
        resize_into(np.ascontiguousarray(rgb), SIZE, frame)
        out.append((path.name, frame))
    return out


def coco_ap(engines: dict[str, Runner], params: dict, subset: str = "val2017-206") -> None:
    """COCO bbox AP / AP50 of every engine + the NumPy post-processing, as ``benchmarks/eval.py`` scores
    the service: every detection (down to the 0.01 floor), boxes clipped to the image."""
    import contextlib
    import io
    import json

    from PIL import Image
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from core.ssd.engines.resize import resize_into

    folder = SHARED / "coco" / subset
    annotations = folder / "instances.json"
    infos = json.loads(annotations.read_text())["images"]
    results: dict[str, list[dict]] = {name: [] for name in engines}
    for info in infos:
        with Image.open(folder / info["file_name"]) as image:
            rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        frame = np.empty((SIZE[1], SIZE[0], 3), np.uint8)
        resize_into(rgb, SIZE, frame)
        w, h = info["width"], info["height"]
        for name, run in engines.items():
            for label, score, *box in postprocess(*run(frame), params):
                ymin, xmin, ymax, xmax = np.clip(box, 0.0, 1.0)
                results[name].append(
                    {
                        "image_id": info["id"],
                        "category_id": int(label),
                        "bbox": [float(xmin * w), float(ymin * h), float((xmax - xmin) * w), float((ymax - ymin) * h)],
                        "score": float(score),
                    }
                )
    print(f"\nCOCO {subset} ({len(infos)} photos, pycocotools bbox, NumPy post-processing for every engine)")
    print(f"{'engine':14} {'AP':>7} {'AP50':>7}")
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
    for name, found in results.items():
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(truth, truth.loadRes(found), "bbox")
            evaluation.params.imgIds = sorted(info["id"] for info in infos)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        print(f"{name:14} {evaluation.stats[0]:7.4f} {evaluation.stats[1]:7.4f}", flush=True)


def timed(engines: dict[str, Callable], image: np.ndarray, runs: int, warmup: int = 10) -> dict[str, list[float]]:
    names = list(engines)
    for _ in range(warmup):
        for name in names:
            engines[name](image)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            engines[name](image)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def _safe(build: Callable, name: str, failures: dict[str, str]):
    try:
        return build()
    except Exception as error:  # noqa: BLE001 -- any failure of an engine is a finding to report
        failures[name] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        print(f"  {name}: FAILED: {failures[name]}", flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work", type=Path, help="where the converted files go (reused if there; default: a temp dir)")
    parser.add_argument("--coco", action="store_true", help="also score every engine's COCO AP on ../shared/coco")
    args = parser.parse_args(argv)
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        print(f"skipped: missing packages {', '.join(missing)} (see this script's docstring for the venv)")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import onnxruntime as ort
    import openvino as ov

    from core.artifacts.quantize import calibration_images

    work = args.work or Path(tempfile.mkdtemp(prefix="other-engines-"))
    work.mkdir(parents=True, exist_ok=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
    print(
        f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}; ISA: {' '.join(f for f in flags if f in ('avx512_vnni', 'avx_vnni', 'amx_int8', 'amx_bf16', 'avx512_bf16'))}"
    )
    print(f"onnxruntime {ort.__version__}, openvino {ov.__version__}, numpy {np.__version__}")

    failures: dict[str, str] = {}
    params = cut_network(args.model / "ssd_float.tflite", work / "net_float.tflite")
    cut_network(args.model / "ssd_int8.tflite", work / "net_int8.tflite")
    onnx_float, onnx_int8, onnx_u8 = work / "net_float.onnx", work / "net_int8_qdq.onnx", work / "net_u8s8_qdq.onnx"
    if not onnx_float.is_file():  # an earlier run's files in --work are reused
        _safe(lambda: to_onnx(work / "net_float.tflite", onnx_float), "tf2onnx", failures)
    if onnx_float.is_file() and not onnx_u8.is_file():
        start = time.perf_counter()
        views = calibration_images(SIZE)
        _safe(lambda: quantise_onnx(onnx_float, onnx_int8, views), "ort-quantize", failures)
        _safe(lambda: quantise_onnx(onnx_float, onnx_u8, views, "QUInt8"), "ort-quantize-u8", failures)
        print(f"ORT static quantisation: {time.perf_counter() - start:.0f} s")

    def engines(threads: int) -> dict[str, Callable]:
        builders = {
            "litert-float": lambda: litert(work / "net_float.tflite", threads),
            "litert-int8": lambda: litert(work / "net_int8.tflite", threads),
            "ort-float": lambda: onnxruntime(onnx_float, threads),
            "ort-int8": lambda: onnxruntime(onnx_int8, threads),
            "ort-u8s8": lambda: onnxruntime(onnx_u8, threads),
            "ov-float": lambda: openvino(work / "net_float.tflite", threads, "f32"),
            "ov-bf16": lambda: openvino(work / "net_float.tflite", threads, None),
            "ov-int8": lambda: openvino(onnx_int8, threads, "f32"),
        }
        built = {name: _safe(build, f"{name} ({threads} thr)", failures) for name, build in builders.items()}
        return {name: run for name, run in built.items() if run is not None}

    # Accuracy, against the LiteRT float network, on the photos.
    images = photos()
    one = engines(1)
    reference = {name: one["litert-float"](frame) for name, frame in images}
    full = litert_full(args.model / "ssd_float.tflite", 1)
    print(f"\naccuracy on {len(images)} photos vs litert-float (detections >= 0.5 after NumPy post-processing)")
    print(f"{'engine':14} {'max|dscore|':>11} {'max|dbox|':>10} {'labels same':>11} {'min IoU':>8} {'max|ds| det':>11}")
    op_same = []
    for name, run in one.items():
        dscore = dbox = worst_det = 0.0
        same, min_iou = 0, 1.0
        for photo, frame in images:
            boxes, scores = run(frame)
            rb, rs = reference[photo]
            dscore, dbox = max(dscore, float(np.abs(scores - rs).max())), max(dbox, float(np.abs(boxes - rb).max()))
            ok, iou, ds = compare(postprocess(rb, rs, params), postprocess(boxes, scores, params))
            same += ok
            min_iou, worst_det = (min(min_iou, iou), max(worst_det, ds)) if ok else (min_iou, worst_det)
            if name == "litert-float":
                op_same.append(compare(full(frame), postprocess(rb, rs, params), 0.3))
        print(f"{name:14} {dscore:11.2e} {dbox:10.2e} {same:>6}/{len(images):<4} {min_iou:8.4f} {worst_det:11.2e}")
    post_ms = []
    for photo, _ in images:
        start = time.perf_counter()
        for _ in range(20):
            postprocess(*reference[photo], params)
        post_ms.append((time.perf_counter() - start) * 50)
    print(
        f"NumPy post-processing, 1 thread: median {statistics.median(post_ms):.2f} ms over the photos "
        f"(max {max(post_ms):.2f} ms, each the mean of 20)"
    )
    agree = sum(ok for ok, _, _ in op_same)
    print(
        f"NumPy post-processing vs the {POSTPROCESS_OP} op (>= 0.3): same labels on {agree}/{len(images)}, "
        f"min IoU {min(i for ok, i, _ in op_same if ok):.4f}, max |dscore| {max(d for ok, _, d in op_same if ok):.1e}"
    )

    if args.coco:
        coco_ap(one, params)

    # Speed.
    frame = images[0][1]
    for threads in args.threads if args.runs else []:
        runners = one if threads == 1 else engines(threads)
        runners = dict(runners)
        boxes, scores = reference[images[0][0]]
        runners["numpy-postprocess"] = lambda _image, b=boxes, s=scores: postprocess(b, s, params)
        runners["litert-float+op"] = litert_full(args.model / "ssd_float.tflite", threads)
        runners["litert-int8+op"] = litert_full(args.model / "ssd_int8.tflite", threads)
        print(f"\n{threads} thread(s): {args.runs} interleaved rounds on {images[0][0]}, load {os.getloadavg()[0]:.2f}")
        times = timed(runners, frame, args.runs)
        base = statistics.median(times["litert-int8"])
        print(f"{'engine':18} {'median ms':>9} {'p90 ms':>7} {'vs litert-int8':>14}")
        for name, values in times.items():
            median = statistics.median(values)
            p90 = float(np.percentile(values, 90))
            print(f"{name:18} {median:9.2f} {p90:7.2f} {median / base:13.2f}x")
    if failures:
        print("\nfailures:")
        for name, text in failures.items():
            print(f"  {name}: {text}")
    print(f"\nfiles in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
