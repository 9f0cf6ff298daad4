"""Leaving out the files of an installed model that the backend it is served with never reads.

A LiteRT image serves the ``.tflite`` converted from a frozen graph; the archive's graph and
SavedModel stay unread (36 MB for SSDLite). :func:`prune` removes what the chosen backends do not
read, after recording in the manifest what it removed (with the digests they had) and which
backends still serve the directory, so that verification skips exactly those files and asking
for another backend fails with a message that names them (:mod:`core.serving.factory`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from core.artifacts.catalog import Catalog, load_catalog
from core.artifacts.manifest import record_pruned, verify_installed
from core.errors import ModelLoadError
from core.serving.factory import files_read

log = logging.getLogger(__name__)
#: Every backend an installed model may be served with (``auto`` picks one of these).
BACKENDS = ("tf", "tflite", "tflite-int8")


def prune(model_dir: Path, backends: Sequence[str], catalog: Catalog | None = None) -> list[str]:
    """Remove the files of the verified install ``model_dir`` that none of ``backends`` reads;
    return them (relative paths, sorted). :class:`ModelLoadError` if one of ``backends`` cannot
    serve the directory; nothing is removed then."""
    model_dir = Path(model_dir)
    manifest = verify_installed(model_dir)
    catalog = catalog or load_catalog()
    keep: set[str] = set()
    for backend in backends:
        if backend not in BACKENDS:
            raise ModelLoadError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        keep |= files_read(model_dir, backend, catalog)
    removed = sorted(rel for rel in manifest.files if rel not in manifest.pruned and rel not in keep)
    if not removed:
        log.info("%s: every file is read by BACKEND=%s; nothing pruned", model_dir, " or ".join(backends))
        return []
    still_served = [backend for backend in BACKENDS if _reads_only(model_dir, backend, keep, catalog)]
    record_pruned(model_dir, removed, still_served)
    for rel in removed:
        (model_dir / rel).unlink()
        log.info("pruned %s", rel)
    for folder in sorted({p for rel in removed for p in (model_dir / rel).parents if p != model_dir}, reverse=True):
        if folder.is_relative_to(model_dir) and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def _reads_only(model_dir: Path, backend: str, keep: set[str], catalog: Catalog) -> bool:
    try:
        return files_read(model_dir, backend, catalog) <= keep
    except ModelLoadError:
        return False
