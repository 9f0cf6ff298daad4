"""``python -m core prune MODEL_DIR --backend B``: remove the files of an installed model that backend never reads.

The manifest records what was removed (and its digests) and which backends still serve the
directory: verification skips the removed files, and another backend fails with a message that
names them. The Docker build prunes the model it installs for the image's BACKEND.
"""

from __future__ import annotations

import argparse
import logging
import sys

from core.cli.paths import user_path
from core.errors import DetectorError
from core.serving.prune import BACKENDS, prune


def register(commands: argparse._SubParsersAction) -> None:
    text = "remove the files of an installed model that the given backend(s) never read (recorded in its manifest)"
    parser = commands.add_parser("prune", help=text, description=f"{text}. {__doc__.splitlines()[2]}")
    parser.add_argument("model", type=user_path, help="installed model directory (the one `fetch` prints)")
    parser.add_argument(
        "--backend",
        action="append",
        required=True,
        choices=BACKENDS,
        help="a backend the directory must still serve (repeat to keep several)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    model_dir = args.model
    if not model_dir.is_dir():
        print(f"error: {model_dir} is not a model directory", file=sys.stderr)
        return 1
    sizes = {p.relative_to(model_dir).as_posix(): p.stat().st_size for p in model_dir.rglob("*") if p.is_file()}
    try:
        removed = prune(model_dir, args.backend)
    except (DetectorError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    freed = sum(sizes.get(rel, 0) for rel in removed)
    print(f"pruned {len(removed)} file(s), {freed / 1e6:.1f} MB, for BACKEND={' or '.join(args.backend)}")
    return 0
