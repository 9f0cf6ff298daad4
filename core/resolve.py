"""Turning what a user types after ``--model`` (a catalog name or a path) into a detector.

A path is the user's own file and is used as it is. A name goes through the fetcher, like the
service's model: a catalog model is installed on first use and its files are re-verified
against the manifest before loading; any other installed model (``custom-<sha256[:12]>``
from ``MODEL_URL``) is re-verified the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

from config import ConfigError, Settings
from core.artifacts import ensure_model, verify_installed
from core.catalog import CatalogError, load_catalog
from core.errors import ModelLoadError
from core.integrity import ArtifactError
from core.registry import detector_for, detector_in
from core.ssd_mobilenet import SSDMobileNet


def is_path(name_or_path: str | Path) -> bool:
    """Anything that exists or contains a path separator is a path; anything else a model name."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or os.sep in text or "/" in text or Path(text).exists()


def detector_named(name: str, assets_dir: Path | None = None, *, backend: str = "auto",
                   engine_threads: int = 0) -> SSDMobileNet:
    """An unloaded detector for a model installed under ``<assets_dir>/models/<name>``.

    Catalog models missing there are downloaded and verified first. ``assets_dir`` defaults
    to the ``ASSETS_DIR`` setting.
    """
    try:
        settings = Settings(model=name, assets_dir=Path(assets_dir or Settings.from_env().assets_dir),
                            backend=backend, engine_threads=engine_threads)
        catalog = load_catalog()
        if name in catalog.entries:
            ensure_model(settings, catalog=catalog)
            return detector_for(settings)
        if not settings.model_dir.is_dir():
            raise ModelLoadError(
                f"{name!r} is neither a model path, a catalog model ({', '.join(catalog.names)}) "
                f"nor a model installed in {settings.model_dir.parent}"
            )
        verify_installed(settings.model_dir)
    except (ArtifactError, CatalogError, ConfigError, OSError) as exc:
        raise ModelLoadError(str(exc)) from exc
    return detector_in(settings.model_dir, settings)
