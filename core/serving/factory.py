"""The one place detectors are built: :func:`detector` for a model by name, :func:`detector_at` for a path.

A model named by the catalog or installed by the fetcher is never loaded from files that were
not just re-verified: its directory must carry a manifest whose digests still match, and the
network file must be one the manifest lists. A path is the user's own file, used as it is.
Both return an unloaded detector; ``load()`` reads the weights (the service does it in the
background so that health probes answer meanwhile).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from core.artifacts.catalog import Catalog, CatalogEntry, load_catalog
from core.artifacts.download import public_url
from core.artifacts.install import ensure_model, installed_model_dir
from core.artifacts.manifest import Manifest, read_manifest, verify_installed
from core.artifacts.optimize import DEFAULT_NAME as FLOAT_NAME
from core.artifacts.plan import Source
from core.artifacts.quantize import DEFAULT_NAME as INT8_NAME
from core.errors import DetectorError, ModelLoadError
from core.model.wrapper import ModelInfo
from core.ssd.detector import SSDMobileNet, find_model, label_map_file, label_map_for
from core.ssd.engines.base import Engine

log = logging.getLogger(__name__)
DESCRIPTION = "SSD MobileNet object detector for the 80 COCO classes"
#: The backends LiteRT serves: ``tflite`` (float, or a model that is a .tflite) and ``tflite-int8``.
LITERT_BACKENDS = ("tflite", "tflite-int8")


def detector(
    model: str | Source,
    models_dir: Path,
    *,
    backend: str = "auto",
    engine_threads: int = 0,
    lone_threads: int = 0,
    fetch: bool = False,
) -> SSDMobileNet:
    """An unloaded detector for a catalog model, a pinned archive (a :class:`Source`) or a model
    installed under ``models_dir`` (``custom-<sha256[:12]>``), after re-verifying its files.

    With ``fetch`` a catalog model or pinned archive that is missing is downloaded and verified
    first (the CLI and the Python API); without it (the service) a missing model is an error
    that names the command which installs it.
    """
    source = model if isinstance(model, Source) else Source(model)
    target = Path(models_dir) / source.name
    try:
        catalog = load_catalog()
        if source.url or source.model in catalog.entries:
            model_dir = (
                ensure_model(source, models_dir, catalog=catalog)
                if fetch
                else installed_model_dir(source, models_dir, catalog=catalog)
            )
            if model_dir is None:
                raise ModelLoadError(
                    f"model {source.name!r} is not installed and verified in {target}; "
                    "run `python -m core fetch` first (`make run` and the Docker build do)"
                )
        elif target.is_dir():
            verify_installed(target)
            model_dir = target
        else:
            raise ModelLoadError(
                f"{source.name!r} is neither a model path, a catalog model "
                f"({', '.join(catalog.names)}) nor a model installed in {models_dir}"
            )
        return _installed_detector(model_dir, source.name, catalog, backend, engine_threads, lone_threads)
    except ModelLoadError:
        raise
    except (DetectorError, OSError) as exc:  # the supply chain's errors, said as a load failure
        raise ModelLoadError(str(exc)) from exc


def detector_at(
    path: str | Path,
    *,
    fmt: str | None = None,
    backend: str = "auto",
    engine_threads: int = 0,
    lone_threads: int = 0,
    info: ModelInfo | None = None,
) -> SSDMobileNet:
    """An unloaded SSD detector for a model directory or file, used as it is.

    The files are located now (so a wrong path fails at once). ``engine_threads`` is how many
    inferences run at once, one core each (0: the engine's default); ``lone_threads`` how many
    cores a LiteRT network may use when no other inference is running (0: ``engine_threads``).
    """
    root = Path(path)
    litert = backend in LITERT_BACKENDS
    # BACKEND=tflite* picks the .tflite in a directory that also holds the TF graph it was made from.
    preferred = INT8_NAME if backend == "tflite-int8" else FLOAT_NAME
    if root.is_dir() and litert and (named := sorted(root.rglob(preferred))):
        root_file: Path = named[0]
    elif root.is_dir() and backend == "tflite-int8":
        raise ModelLoadError(f"no {INT8_NAME} under {root}: run `python -m core optimize {root} --int8` first")
    else:
        root_file = root
    model_file, found = find_model(root_file, fmt or ("tflite" if litert else None))
    backend = _served_backend(backend, found, model_file)

    def engine() -> Engine:
        log.info("loading %s model %s with the %s backend", found, model_file, backend)
        if backend in LITERT_BACKENDS:
            from core.ssd.engines.litert import TFLiteEngine

            return TFLiteEngine(model_file, engine_threads=engine_threads, backend=backend, lone_threads=lone_threads)
        from core.ssd.engines.tensorflow import TensorFlowEngine

        return TensorFlowEngine(model_file, found, engine_threads=engine_threads)

    info = info or ModelInfo(
        id=root.name if root.is_dir() else root.stem,
        name=f"SSD MobileNet ({root.name})",
        description=DESCRIPTION,
        source="https://github.com/tensorflow/models/tree/master/research/object_detection",
        license="Apache-2.0",
    )
    return SSDMobileNet(engine, label_map_for(model_file, root if root.is_dir() else root.parent), info)


def _served_backend(backend: str, fmt: str, model_file: Path) -> str:
    """The backend that runs a ``fmt`` model (``auto``: what the format needs); a mismatch is refused."""
    if backend == "auto":
        backend = "tflite" if fmt == "tflite" else "tf"
    if (backend in LITERT_BACKENDS) != (fmt == "tflite"):
        raise ModelLoadError(f"backend {backend!r} cannot run a {fmt} model ({model_file})")
    return backend


def _installed_detector(
    model_dir: Path, name: str, catalog: Catalog, backend: str, engine_threads: int, lone_threads: int
) -> SSDMobileNet:
    """The detector for an install the caller has just verified.

    Metadata comes from its manifest (and the catalog entry it names); the network file must be
    one the manifest lists.
    """
    manifest = read_manifest(model_dir)
    entry: CatalogEntry | None = catalog.get(manifest.model) if manifest.model else None
    info = ModelInfo(
        id=name,
        name=f"SSD MobileNet ({entry.name if entry else name})",
        description=DESCRIPTION,
        source=entry.source if entry else public_url(manifest.url),
        license=entry.license if entry else "see the model archive",
        extra={"version": manifest.archive["sha256"][:12], "installed_at": manifest.installed_at},
    )
    if manifest.pruned_for and backend != "auto" and backend not in manifest.pruned_for:
        raise ModelLoadError(_pruned_message(model_dir, name, manifest, backend))
    try:
        model_file, fmt, served, fallback = _resolve(model_dir, name, manifest, entry, backend)
    except ModelLoadError as exc:
        if manifest.pruned:  # e.g. BACKEND=auto, and the file it would pick was pruned
            raise ModelLoadError(f"{_pruned_message(model_dir, name, manifest, backend)} ({exc})") from exc
        raise
    if fallback:
        log.warning("%s: %s; serving the float TFLite model %s instead", name, fallback, model_file.name)
        info.extra["fallback"] = fallback
    _require_listed(model_dir, model_file, manifest.files)
    return detector_at(
        model_file, fmt=fmt, backend=served, engine_threads=engine_threads, lone_threads=lone_threads, info=info
    )


def files_read(model_dir: Path, backend: str, catalog: Catalog | None = None) -> set[str]:
    """The files of an installed model (paths relative to ``model_dir``) that serving it with
    ``backend`` reads: the network file (every file of a SavedModel), the int8 model's float
    fallback when it is the one served (and the int8 file whose verdict says so), and a label
    map shipped with the model. Found the way the service finds them; :class:`ModelLoadError`
    if ``backend`` cannot serve the directory."""
    manifest = read_manifest(model_dir)
    catalog = catalog or load_catalog()
    entry = catalog.get(manifest.model) if manifest.model else None
    model_file, fmt, served, fallback = _resolve(model_dir, model_dir.name, manifest, entry, backend)
    _served_backend(served, fmt, model_file)
    files = sorted(p for p in model_file.rglob("*") if p.is_file()) if model_file.is_dir() else [model_file]
    files.append(label_map_file(model_file, model_file if model_file.is_dir() else model_file.parent))
    if fallback:  # the int8 file's recorded verdict is what sends the service to the float one
        files.append(_converted(model_dir, model_dir.name, int8=True))
    return {p.relative_to(model_dir).as_posix() for p in files if p.is_relative_to(model_dir)}


def _resolve(
    model_dir: Path, name: str, manifest: Manifest, entry: CatalogEntry | None, backend: str
) -> tuple[Path, str, str, str | None]:
    """The network file ``backend`` serves from an install, its format, the backend that serves
    it (``tflite`` when the int8 model falls back to the float one) and why it fell back, if it did."""
    if backend == "auto" and manifest.pruned_for:  # what is left decides: the backend it was pruned for
        backend = next(b for b in ("tflite-int8", "tflite", "tf") if b in manifest.pruned_for)
    family = "tflite" if backend in LITERT_BACKENDS else backend
    if entry and backend != "auto" and family not in entry.backends:
        raise ModelLoadError(f"{entry.name} runs on the {' or '.join(entry.backends)} backend, not {backend}")
    path = model_dir / entry.model_file if entry else model_dir
    fmt = entry.format if entry else _archive_format(model_dir, manifest)
    fallback = None
    if backend == "tflite-int8" and fmt != "tflite":  # the int8 file `python -m core optimize --int8` wrote
        path, fallback = _int8_or_fallback(model_dir, name, manifest.checks)
        backend, fmt = ("tflite" if fallback else backend), "tflite"
    elif backend == "tflite" and fmt != "tflite":  # the .tflite `python -m core optimize` wrote beside it
        path = _converted(model_dir, name, int8=False)
        fmt = "tflite"
    elif backend == "tflite-int8":  # a model that came as a .tflite is served as it is: not our int8 conversion
        backend = "tflite"
    model_file, fmt = find_model(path, fmt)
    return model_file, fmt, backend, fallback


def _archive_format(model_dir: Path, manifest: Manifest) -> str | None:
    """``tflite`` when a custom archive itself is a TFLite model (no graph came with it, only a
    .tflite: the published int8 one), as a catalog entry of that format says; else None (found later)."""
    fetched = [rel for rel in manifest.files if rel not in manifest.derived]
    if any(rel.endswith(".tflite") for rel in fetched) and not any(
        rel.endswith(("frozen_inference_graph.pb", "saved_model.pb")) for rel in fetched
    ):
        return "tflite"
    return None


#: The release tag suffix of the image built for each backend (docs/deployment.md).
IMAGE_VARIANT = {"tf": "-tf", "tflite": "-tflite", "tflite-int8": "none, the default image"}


def _pruned_message(model_dir: Path, name: str, manifest: Manifest, backend: str) -> str:
    """Why ``backend`` cannot serve a pruned install: what was removed, and where it is served."""
    variant = f" (release tag: {IMAGE_VARIANT[backend]})" if backend in IMAGE_VARIANT else ""
    return (
        f"BACKEND={backend} cannot serve {name}: {model_dir} was pruned for BACKEND="
        f"{' or '.join(manifest.pruned_for)} (`python -m core prune`), which removed "
        f"{', '.join(sorted(manifest.pruned))}. Use the image built with --build-arg BACKEND={backend}"
        f"{variant}, or install the model again under another ASSETS_DIR (`python -m core fetch`)"
    )


def _converted(model_dir: Path, name: str, int8: bool) -> Path:
    """The file ``python -m core optimize [--int8]`` wrote (an unlisted one is refused by the caller)."""
    if int8:
        found = sorted(model_dir.rglob(INT8_NAME))
    else:  # ssd_float.tflite, or a float .tflite written under another name with --output
        found = sorted(model_dir.rglob(FLOAT_NAME)) or sorted(
            p for p in model_dir.rglob("*.tflite") if p.name != INT8_NAME
        )
    if not found:
        flag, value = (" --int8", "tflite-int8") if int8 else ("", "tflite")
        raise ModelLoadError(
            f"{name} has no {INT8_NAME if int8 else 'TFLite file'} yet: run `python -m core optimize{flag} "
            f"{model_dir}` first (a Docker build with BACKEND={value} does)"
        )
    return found[0]


def _int8_or_fallback(model_dir: Path, name: str, checks: Mapping[str, dict]) -> tuple[Path, str | None]:
    """The int8 file, and None, when it passed its accuracy gate at conversion (the manifest
    records the verdict); else the float file and why (the caller says it in the log and in the
    model's metadata, ``fallback``)."""
    int8 = _converted(model_dir, name, int8=True)
    verdict = checks.get(int8.relative_to(model_dir).as_posix())
    if verdict and verdict.get("passed") is True:
        return int8, None
    reason = (verdict.get("reason") or "failed") if verdict else "no verdict recorded in the manifest"
    return _converted(model_dir, name, int8=False), f"int8 failed the accuracy gate: {reason}"


def _require_listed(model_dir: Path, model_file: Path, listed: Mapping[str, object]) -> None:
    """Refuse a network file the manifest does not list: only listed files were just re-verified."""
    files = sorted(p for p in model_file.rglob("*") if p.is_file()) if model_file.is_dir() else [model_file]
    unlisted = [rel for rel in (p.relative_to(model_dir).as_posix() for p in files) if rel not in listed]
    if unlisted:
        raise ModelLoadError(
            f"{', '.join(unlisted)} in {model_dir} is not in its manifest: "
            "refusing to load files that were never verified"
        )
