"""Does a LiteRT interpreter with 2 threads give the same detections as with 1? (TF issue #56058)

    python benchmarks/nms_threads.py MODEL.tflite [--photos N]

Runs the model with ``num_threads=1`` and ``num_threads=2`` on the photos of ``../shared/images``
and the first N of ``../shared/coco/val2017-206``, and lists every photo whose detections scoring
>= 0.3 differ (classes or scores). The engine stays single-threaded per interpreter while this
finds differences: ``TFLite_Detection_PostProcess``'s per-class NMS runs multi-threaded too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def main(argv: list[str] | None = None) -> int:
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    from core.ssd.engines.resize import resize_into

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--photos", type=int, default=60, help="how many COCO photos besides ../shared/images")
    args = parser.parse_args(argv)
    files = (
        sorted((SHARED / "images").glob("*.jpg"))
        + sorted((SHARED / "coco/val2017-206/images").glob("*.jpg"))[: args.photos]
    )
    runners = []
    for threads in (1, 2):
        interpreter = Interpreter(model_path=str(args.model), num_threads=threads)
        interpreter.allocate_tensors()
        (post,) = [op for op in interpreter._get_ops_details() if op["op_name"] == "TFLite_Detection_PostProcess"]
        runners.append((interpreter, interpreter.get_input_details()[0], [int(i) for i in post["outputs"]]))
    differ = 0
    for path in files:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        frame = np.empty((300, 300, 3), np.uint8)
        resize_into(rgb, (300, 300), frame)
        found = []
        for interpreter, spec, outputs in runners:
            value = frame if spec["dtype"] == np.uint8 else frame.astype(np.float32)
            interpreter.set_tensor(spec["index"], value[None])
            interpreter.invoke()
            _, classes, scores, count = (interpreter.get_tensor(i) for i in outputs)
            n = int(count.reshape(-1)[0])
            keep = scores[0, :n] >= 0.3
            found.append((sorted(classes[0, :n][keep].astype(int).tolist()), np.sort(scores[0, :n][keep])))
        (c1, s1), (c2, s2) = found
        if c1 != c2 or not np.allclose(s1, s2, atol=1e-4):
            differ += 1
            print(f"{path.name}: 1 thread classes {c1}, 2 threads {c2}")
    print(f"{differ} of {len(files)} photos differ at score >= 0.3 between 1 and 2 threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
