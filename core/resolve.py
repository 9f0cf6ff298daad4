"""Turning what a user types after ``--model`` (a catalog name or a path) into model files."""
from __future__ import annotations

import os
from pathlib import Path

from config import Settings
from core.errors import ModelLoadError


def resolve_model(name_or_path: str | Path, assets_dir: Path | None = None) -> Path:
    """The model directory or file for a path, or for a catalog name installed under ``assets_dir``.

    Anything that exists or contains a path separator is a path; anything else is a catalog
    name, looked up where the service installs models (``<assets_dir>/models/<name>``,
    ``assets_dir`` defaulting to the ``ASSETS_DIR`` setting).
    """
    path = Path(name_or_path).expanduser()
    text = str(name_or_path)
    if path.exists():
        return path
    if os.sep in text or "/" in text:
        raise ModelLoadError(f"model path {path} does not exist")
    settings = Settings(model=text, assets_dir=assets_dir or Settings.from_env().assets_dir)
    if settings.model_dir.is_dir():
        return settings.model_dir
    raise ModelLoadError(
        f"{text!r} is neither a model path nor a model installed in {settings.model_dir.parent}; "
        f"install it with: python -m core.artifacts fetch --model {text} --assets-dir {settings.assets_dir}"
    )
