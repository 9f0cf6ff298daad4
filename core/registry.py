"""From settings (or a catalog name) to a detector over verified files.

The service never loads model files it has not verified: the installed directory must carry
a manifest whose digests still match, which the fetcher (``core.artifacts``) wrote.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from config import ConfigError, Settings
from core.artifacts import installed_model_dir, read_manifest
from core.catalog import CatalogError, load_catalog
from core.errors import ModelLoadError
from core.integrity import ArtifactError
from core.model import ModelInfo
from core.ssd_mobilenet import SSDMobileNet, find_model, make_detector


def detector_for(settings: Settings) -> SSDMobileNet:
    """An unloaded detector for the model ``settings`` name, after re-verifying its files."""
    try:
        model_dir = installed_model_dir(settings)
    except (ArtifactError, CatalogError, ConfigError, OSError) as exc:
        raise ModelLoadError(str(exc)) from exc
    if model_dir is None:
        raise ModelLoadError(
            f"model {settings.model_name!r} is not installed and verified in {settings.model_dir}; "
            "run `python -m core.artifacts fetch` first (`make run` and the Docker build do)"
        )
    return detector_in(model_dir, settings)


def detector_in(model_dir: Path, settings: Settings) -> SSDMobileNet:
    """An unloaded detector for the install in ``model_dir``, which the caller has just verified.

    Metadata comes from its manifest (and the catalog entry it names); the network file must be
    one the manifest lists. ``settings`` gives the name, backend and engine threads.
    """
    try:
        manifest = read_manifest(model_dir)
        entry = load_catalog().get(manifest.model) if manifest.model else None
    except (ArtifactError, CatalogError, ConfigError, OSError) as exc:
        raise ModelLoadError(str(exc)) from exc
    archive_digest = manifest.archive["sha256"]  # the fetcher always records it
    info = ModelInfo(
        id=settings.model_name,
        name=f"SSD MobileNet ({entry.name})" if entry else f"SSD MobileNet ({settings.model_name})",
        description="SSD MobileNet object detector for the 80 COCO classes",
        source=entry.source if entry else manifest.url,
        license=entry.license if entry else "see the model archive",
        extra={"version": archive_digest[:12], "installed_at": manifest.installed_at},
    )
    if entry and settings.backend != "auto" and settings.backend not in entry.backends:
        raise ModelLoadError(f"{entry.name} runs on the {' or '.join(entry.backends)} backend, not {settings.backend}")
    path = model_dir / entry.model_file if entry else model_dir
    fmt = entry.format if entry else None
    if settings.backend == "tflite" and fmt != "tflite":  # the float .tflite core.optimize wrote beside it
        if next(model_dir.rglob("*.tflite"), None) is None:  # one that is there but unlisted is refused below
            raise ModelLoadError(f"{settings.model_name} has no TFLite file yet: run `python -m core.optimize "
                                 f"{model_dir}` first (a Docker build with BACKEND=tflite does)")
        path, fmt = model_dir, "tflite"
    model_file, fmt = find_model(path, fmt)
    _require_listed(model_dir, model_file, manifest.files)
    return make_detector(model_file, fmt=fmt, backend=settings.backend,
                         engine_threads=settings.effective_engine_threads, info=info)


def _require_listed(model_dir: Path, model_file: Path, listed: Mapping[str, object]) -> None:
    """Refuse a network file the manifest does not list: only listed files were just re-verified."""
    files = sorted(p for p in model_file.rglob("*") if p.is_file()) if model_file.is_dir() else [model_file]
    unlisted = [rel for rel in (p.relative_to(model_dir).as_posix() for p in files) if rel not in listed]
    if unlisted:
        raise ModelLoadError(f"{', '.join(unlisted)} in {model_dir} is not in its manifest: "
                             "refusing to load files that were never verified")
