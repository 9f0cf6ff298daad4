"""``python -m core predict``: run detectors on local files without an HTTP server.

Prints one JSON line per image and model on stdout, in the schema of ``/model/predict``
plus ``file`` and ``model``, so the output pipes into ``jq`` or a script. Each image is read
and decoded once, however many models run on it. A bad file is reported (JSON line and a
message on stderr naming it) and the run goes on; the exit code says whether any failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from core import is_path, load_detector
from core.cli.paths import given_path, user_path
from core.errors import DetectorError, InvalidInput
from core.model.annotate import draw_detections, encode
from core.model.images import DecodedImage, decode_image
from core.model.wrapper import DEFAULT_THRESHOLD, ModelWrapper
from core.settings import BACKENDS, ConfigError, ModelSettings, parse_fraction

#: Files picked up when a folder is given (explicitly named files are always tried).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
EXIT_OK, EXIT_FILE_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger(__name__)


def _threshold(raw: str) -> float:
    try:
        return parse_fraction(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {raw!r}") from None


def register(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="detect objects in image files or folders",
        description="Detect objects in images; folders are searched recursively for "
        + ", ".join(sorted(IMAGE_EXTENSIONS))
        + " files.",
    )
    predict.add_argument("paths", nargs="+", type=given_path, metavar="PATH", help="image file or folder")
    predict.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME_OR_PATH",
        help="catalog name installed under ASSETS_DIR/models, or a model directory or file; "
        "repeat to run several models on each image",
    )
    predict.add_argument(
        "--threshold",
        type=_threshold,
        default=DEFAULT_THRESHOLD,
        help=f"minimum score, in [0, 1] (default {DEFAULT_THRESHOLD})",
    )
    predict.add_argument(
        "--out", type=given_path, metavar="DIR", help="also write annotated copies here, mirroring the folders' layout"
    )
    predict.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="inference engine (default: the model's own)",
    )
    predict.add_argument(
        "--assets-dir", type=user_path, help="where catalog models are installed (default: ASSETS_DIR)"
    )
    predict.add_argument(
        "--progress", action="store_true", help="show the progress bar even when stderr is not a terminal"
    )
    predict.add_argument("-v", "--verbose", action="store_true", help="log model loading and timings on stderr")
    predict.set_defaults(run=run)


def find_images(paths: Sequence[Path]) -> list[tuple[Path, Path]]:
    """``(file, name for outputs)`` pairs: named files as given, folders searched recursively.

    A path that does not exist is kept, so it is reported as a failed file rather than skipped.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            pairs = [
                (f, f.relative_to(path))
                for f in sorted(path.rglob("*"))
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            ]
        else:
            pairs = [(path, Path(path.name))]
        for file, rel in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, rel))
    return found


def annotated_path(out: Path, rel: Path, model_tag: str | None) -> tuple[Path, str]:
    """Where an annotated copy goes, and its format: PNG stays PNG, everything else becomes JPEG.

    ``photo.jpg`` -> ``photo.jpg`` (``photo.<model>.jpg`` with several models); other formats
    keep their full name and gain ``.jpg`` (``scan.tif.jpg``) so two inputs never collide.
    """
    suffix = rel.suffix.lower()
    keep = suffix in (".jpg", ".jpeg", ".png")
    stem = rel.with_suffix("").name if keep else rel.name
    ext = rel.suffix if keep else ".jpg"
    name = stem + (f".{model_tag}" if model_tag else "") + ext
    return out / rel.parent / name, "png" if suffix == ".png" else "jpeg"


def _model_tag(name: str) -> str:
    """A file-name-safe short name for a model given by catalog name or path."""
    path = Path(name)
    base = path.stem if path.suffix else path.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base) or "model"


class Progress:
    """A one-line ``[#####.....] 12/40`` bar on stderr, redrawn in place.

    Twenty lines, and it knows to blank itself before an error line so the two never mix; tqdm
    would need ``tqdm.write`` threaded through every message for the same result.
    """

    WIDTH = 30

    def __init__(self, total: int, stream: IO[str], enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled and total > 0

    def show(self, done: int) -> None:
        if self.enabled:
            filled = self.WIDTH * done // self.total
            self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total}")
            self.stream.flush()

    def clear(self) -> None:
        """Blank the bar so a message can be printed on a clean line."""
        if self.enabled:
            self.stream.write("\r" + " " * (self.WIDTH + 2 * len(str(self.total)) + 4) + "\r")


class PredictRun:
    """One ``predict`` invocation: loaded models, where output goes, which files failed."""

    def __init__(
        self,
        models: list[tuple[str, ModelWrapper]],
        threshold: float,
        max_pixels: int,
        out: Path | None,
        stdout: IO[str],
        stderr: IO[str],
        progress: Progress,
    ) -> None:
        self.models, self.threshold, self.max_pixels, self.out = models, threshold, max_pixels, out
        self.stdout, self.stderr, self.progress = stdout, stderr, progress
        self.tags = {name: _model_tag(name) for name, _ in models} if len(models) > 1 else {}
        self.failed: list[Path] = []

    def decode(self, file: Path) -> DecodedImage:
        """Read and decode ``file`` once for all models.

        Annotated copies need full resolution; without them a JPEG may decode at a reduced
        scale, never below the largest model input.
        """
        if self.out is not None:
            min_size = None
        else:
            sizes = [m.input_size for _, m in self.models if m.input_size]
            min_size = (max(w for w, _ in sizes), max(h for _, h in sizes)) if sizes else None
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read the file: {exc.strerror or exc}") from None
        return decode_image(data, self.max_pixels, min_size)

    def process(self, file: Path, rel: Path) -> None:
        try:
            decoded = self.decode(file)
        except DetectorError as exc:
            self.fail(file, None, str(exc))
            return
        for name, model in self.models:
            try:
                started = time.perf_counter()
                detections = model.detect(decoded, self.threshold)
                log.info(
                    "%s: %d detections with %s in %.1f ms",
                    file,
                    len(detections),
                    name,
                    (time.perf_counter() - started) * 1000,
                )
                line: dict[str, Any] = {
                    "file": str(file),
                    "model": name,
                    "status": "ok",
                    "predictions": [d.to_json() for d in detections],
                }
                if self.out is not None:
                    target, fmt = annotated_path(self.out, rel, self.tags.get(name))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(encode(draw_detections(decoded.image, detections), fmt))
                    line["annotated"] = str(target)
            except (DetectorError, OSError) as exc:
                self.fail(file, name, str(exc))
                continue
            self.emit(line)

    def fail(self, file: Path, model: str | None, message: str) -> None:
        self.failed.append(file)
        line: dict[str, Any] = {"file": str(file), "status": "error", "message": message}
        if model is not None:
            line["model"] = model
        self.emit(line)
        self.progress.clear()
        print(f"error: {file}: {message}", file=self.stderr)

    def emit(self, line: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.stdout.flush()


def predict(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Run the ``predict`` command; returns the process exit code."""
    try:
        settings = ModelSettings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_USAGE
    assets_dir = args.assets_dir or settings.assets_dir
    models: list[tuple[str, ModelWrapper]] = []
    for name in args.model:
        try:
            model = user_path(name) if is_path(name) else name
            models.append((name, load_detector(model, assets_dir=assets_dir, backend=args.backend)))
        except DetectorError as exc:
            print(f"error: cannot load model {name!r}: {exc}", file=stderr)
            return EXIT_USAGE
    images = find_images(args.paths)
    if not images:
        print("error: no image files found in " + ", ".join(map(str, args.paths)), file=stderr)
        return EXIT_FILE_FAILED
    progress = Progress(len(images), stderr, enabled=args.progress or stderr.isatty())
    run = PredictRun(models, args.threshold, settings.max_image_pixels, args.out, stdout, stderr, progress)
    for done, (file, rel) in enumerate(images, start=1):
        run.process(file, rel)
        progress.show(done)
    progress.clear()
    failed = len(set(run.failed))
    if failed:
        print(f"{failed} of {len(images)} files failed", file=stderr)
        return EXIT_FILE_FAILED
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:  # LOG_LEVEL=DEBUG also lets TensorFlow's start-up messages through (core.ssd.engines.quiet)
        debug = ModelSettings.from_env().log_level == "DEBUG"
    except ConfigError:
        debug = False  # predict() reports the bad setting
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return predict(args, sys.stdout, sys.stderr)
