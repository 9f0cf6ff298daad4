"""``python -m core optimize MODEL_DIR``: write the float ``.tflite`` of a frozen graph (needs TensorFlow)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.artifacts.optimize import DEFAULT_NAME, optimize
from core.errors import DetectorError


def register(commands: argparse._SubParsersAction) -> None:
    text = "convert an SSD frozen graph into a float .tflite that BACKEND=tflite serves"
    parser = commands.add_parser("optimize", help=text, description=text)
    parser.add_argument("model", type=Path, help="model directory (or frozen_inference_graph.pb)")
    parser.add_argument("--output", type=Path, help=f"where to write (default: {DEFAULT_NAME} beside the graph)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        written = optimize(args.model, args.output)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(written)
    return 0
