"""The model catalog: which pretrained detectors the service knows and how to verify them.

``assets/catalog.json`` is checked-in data; this module turns it into typed, validated
entries so a typo in a pin or a path fails at load time rather than at download time.
Each entry lists the files kept from its archive (path inside the archive -> pins);
``labels`` is either ``"coco"`` (the service's COCO label map) or one of those files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from core.artifacts.integrity import validate_pin
from core.assets import ASSETS_DIR
from core.errors import CatalogError

DEFAULT_CATALOG = ASSETS_DIR / "catalog.json"
FORMATS = ("frozen_graph", "saved_model", "tflite")
BACKENDS = ("tf", "tflite")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_REQUIRED = {
    "name",
    "format",
    "url",
    "archive",
    "files",
    "model_file",
    "labels",
    "backends",
    "license",
    "source",
    "references",
}
_OPTIONAL = {"note"}


@dataclass(frozen=True)
class CatalogEntry:
    """One downloadable model with the pins that make it trustworthy."""

    name: str
    format: str
    #: Public download URL, or None when the archive is only available via MODEL_URL.
    url: str | None
    #: Pins of the archive as published at ``url``.
    archive: Mapping[str, str]
    #: Files kept after extraction: path inside the archive -> pins.
    files: Mapping[str, Mapping[str, str]]
    #: The kept file the inference backend loads.
    model_file: str
    labels: str
    backends: tuple[str, ...]
    license: str
    source: str
    #: Where each pin comes from, so a reviewer can check it.
    references: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class Catalog:
    """All entries by name."""

    entries: Mapping[str, CatalogEntry]

    @property
    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> CatalogEntry:
        """The entry called ``name``; the error lists the known names so the fix is obvious."""
        try:
            return self.entries[name]
        except KeyError:
            raise CatalogError(f"unknown model {name!r}; known models: {', '.join(self.names)}") from None


def load_catalog(path: Path = DEFAULT_CATALOG) -> Catalog:
    """Read and validate the catalog at ``path``."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("schema") != 1 or not isinstance(raw.get("models"), list):
        raise CatalogError(f"{path}: expected an object with \"schema\": 1 and a 'models' list")
    entries: dict[str, CatalogEntry] = {}
    for i, item in enumerate(raw["models"]):
        try:
            entry = _entry(item)
        except (ValueError, TypeError) as exc:
            raise CatalogError(f"{path}: models[{i}]: {exc}") from None
        if entry.name in entries:
            raise CatalogError(f"{path}: duplicate model name {entry.name!r}")
        entries[entry.name] = entry
    if not entries:
        raise CatalogError(f"{path}: no models")
    return Catalog(MappingProxyType(entries))


def is_safe_relative(path: str) -> bool:
    """True for a relative POSIX path with no ``..``, empty or ``.`` component."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def _entry(item: Any) -> CatalogEntry:
    if not isinstance(item, dict):
        raise TypeError("an entry must be an object")
    missing, unknown = _REQUIRED - item.keys(), item.keys() - _REQUIRED - _OPTIONAL
    if missing or unknown:
        raise ValueError(f"missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
    name = _text(item, "name")
    if not _NAME.match(name):
        raise ValueError(f"name {name!r} must be lowercase letters, digits and underscores")
    where = f"model {name!r}"
    fmt = _text(item, "format")
    if fmt not in FORMATS:
        raise ValueError(f"{where}: format {fmt!r} is not one of {FORMATS}")
    url = item["url"]
    if url is not None and (not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")):
        raise ValueError(f"{where}: url must be an http(s) URL or null, got {url!r}")
    files = item["files"]
    if not isinstance(files, dict) or not files:
        raise ValueError(f"{where}: files must be a non-empty object of path -> digests")
    for rel in files:
        if not is_safe_relative(rel):
            raise ValueError(f"{where}: file path {rel!r} is not a safe relative path")
    model_file, labels = _text(item, "model_file"), _text(item, "labels")
    if model_file not in files:
        raise ValueError(f"{where}: model_file {model_file!r} is not among its files")
    if labels != "coco" and labels not in files:
        raise ValueError(f"{where}: labels must be 'coco' or one of its files, got {labels!r}")
    backends = item["backends"]
    if not isinstance(backends, list) or not backends or not set(backends) <= set(BACKENDS):
        raise ValueError(f"{where}: backends must be a non-empty subset of {BACKENDS}")
    refs = item["references"]
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r for r in refs):
        raise ValueError(f"{where}: references must be a non-empty list of strings")
    note = item.get("note")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"{where}: note must be a string")
    return CatalogEntry(
        name=name,
        format=fmt,
        url=url,
        archive=MappingProxyType(validate_pin(item["archive"], f"{where} archive")),
        files=MappingProxyType(
            {rel: MappingProxyType(validate_pin(pin, f"{where} file {rel}")) for rel, pin in files.items()}
        ),
        model_file=model_file,
        labels=labels,
        backends=tuple(backends),
        license=_text(item, "license"),
        source=_text(item, "source"),
        references=tuple(refs),
        note=note,
    )


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string")
    return value
