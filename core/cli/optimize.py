"""``python -m core optimize MODEL_DIR [--int8]``: write the float (and int8) ``.tflite`` of a frozen graph (needs TensorFlow)."""

from __future__ import annotations

import argparse
import logging
import re
import sys

from core.artifacts.optimize import DEFAULT_NAME, optimize
from core.artifacts.quantize import KEEP_FLOAT, Calibration, optimize_int8
from core.cli.paths import given_path
from core.errors import DetectorError
from core.ssd.engines.quiet import filtered_stderr, tensorflow_requested_verbose


def register(commands: argparse._SubParsersAction) -> None:
    text = "convert an SSD frozen graph into a float .tflite that BACKEND=tflite serves"
    parser = commands.add_parser("optimize", help=text, description=text)
    parser.add_argument("model", type=given_path, help="model directory (or frozen_inference_graph.pb)")
    parser.add_argument("--output", type=given_path, help=f"where to write (default: {DEFAULT_NAME} beside the graph)")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write the calibrated int8 model (ssd_int8.tflite) that BACKEND=tflite-int8 serves, "
        "and check it against the float one (recorded in the manifest)",
    )
    parser.add_argument(
        "--keep-float",
        nargs="*",
        metavar="OP:K",
        help=f"with --int8: ops kept float, as the K-th (0-based) op of a type in execution order "
        f"(default: {' '.join(KEEP_FLOAT)}; none given: quantise everything)",
    )
    parser.set_defaults(run=run)


#: What TensorFlow's converter prints on its own that says nothing to a user (kept with LOG_LEVEL=DEBUG).
CONVERTER_NOISE = re.compile(rb"^(fully_quantize: |WARNING: All log messages before absl)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not tensorflow_requested_verbose():  # our progress lines stay; TensorFlow's own chatter goes
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.WARNING)
        with filtered_stderr(CONVERTER_NOISE):
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.int8:
            if args.output:
                print("error: --int8 writes beside the graph; it takes no --output", file=sys.stderr)
                return 2
            calibration = Calibration() if args.keep_float is None else Calibration(keep_float=tuple(args.keep_float))
            _, written, verdict = optimize_int8(args.model, calibration)
            print(f"int8 accuracy gate: {'passed' if verdict['passed'] else 'FAILED: ' + verdict['reason']}")
        else:
            if args.keep_float is not None:
                print("error: --keep-float only applies with --int8", file=sys.stderr)
                return 2
            written = optimize(args.model, args.output)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(written)
    return 0
