"""``.manifest.json``: what an installed model holds, and re-verifying it before every use.

The installer writes it; files made here later from the fetched ones (the ``.tflite`` files
``python -m core optimize`` writes) are recorded in it too, so they are re-verified the same way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from core.artifacts.catalog import is_safe_relative
from core.artifacts.integrity import IntegrityError, check_digests, hash_file
from core.errors import ArtifactError

log = logging.getLogger(__name__)

MANIFEST = ".manifest.json"


@dataclass(frozen=True)
class Manifest:
    """``.manifest.json``: where an installed model came from and what its files hash to."""

    name: str
    model: str | None
    url: str
    archive: dict[str, str]
    files: dict[str, dict[str, str]]
    installed_at: str
    schema: int = 1
    #: Files made here from the fetched ones (``core.optimize``'s .tflite), not from the archive.
    derived: list[str] = dataclasses.field(default_factory=list)
    #: Checks made on a derived file when it was written, by its path (the int8 model's accuracy gate).
    checks: dict[str, dict] = dataclasses.field(default_factory=dict)
    #: Files removed after the install (``python -m core prune``) because no backend in
    #: ``pruned_for`` reads them: path -> the digests they had. They stay listed in ``files``
    #: (the catalog's pins still describe the install); verification skips them while they are absent.
    pruned: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    #: After a prune: the backends that can still serve this directory (empty: never pruned).
    pruned_for: list[str] = dataclasses.field(default_factory=list)


def read_manifest(model_dir: Path) -> Manifest:
    """The manifest of an installed model; :class:`ArtifactError` if absent or malformed."""
    try:
        manifest = Manifest(**json.loads((model_dir / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ArtifactError(f"no usable {MANIFEST} in {model_dir}: {exc}") from None
    unsafe = [rel for rel in manifest.files if not is_safe_relative(rel)]
    if unsafe:
        raise ArtifactError(f"{model_dir / MANIFEST} lists unsafe paths: {', '.join(unsafe)}")
    return manifest


def verify_installed(model_dir: Path, *, except_for: str | None = None) -> Manifest:
    """Re-hash every file the manifest lists (but ``except_for``, and pruned files that are absent);
    :class:`IntegrityError` on any difference."""
    manifest = read_manifest(model_dir)
    for rel, expected in manifest.files.items():
        if rel == except_for:
            continue
        path = model_dir / rel
        if rel in manifest.pruned and not path.exists():  # removed on purpose; a file put back is checked
            continue
        if not path.is_file():
            raise IntegrityError(f"{rel} is listed in {model_dir / MANIFEST} but missing")
        check_digests(rel, expected, hash_file(path, expected))
    return manifest


def check_derivable(model_dir: Path, rel: str) -> None:
    """:class:`ArtifactError` unless ``rel`` may be written as a derived file: a new path, or an
    earlier derived file (running ``core.optimize`` again), never a file from the archive."""
    manifest = read_manifest(model_dir)
    if not is_safe_relative(rel) or rel == MANIFEST:
        raise ArtifactError(f"{rel!r} is not a path inside {model_dir}")
    if rel in manifest.files and rel not in manifest.derived:
        raise ArtifactError(f"{rel} came with the model archive in {model_dir}; a derived file must not replace it")


def record_derived_file(model_dir: Path, rel: str, check: dict | None = None) -> Manifest:
    """Add a file generated from the verified ones (``core.optimize``'s .tflite) to the manifest,
    so the service re-verifies it like the rest. The model dir must verify first, but for an
    earlier version of ``rel`` itself: running ``core.optimize`` again replaces its own output.
    ``check``: what was verified about the file (recorded under ``checks``; replaces an earlier one)."""
    check_derivable(model_dir, rel)
    manifest = verify_installed(model_dir, except_for=rel)
    if not (model_dir / rel).is_file():
        raise ArtifactError(f"{rel!r} is not a file inside {model_dir}")
    checks = {key: value for key, value in manifest.checks.items() if key != rel}
    if check is not None:
        checks[rel] = check
    updated = dataclasses.replace(
        manifest,
        files={**manifest.files, rel: hash_file(model_dir / rel)},
        derived=sorted({*manifest.derived, rel}),
        checks=checks,
        pruned={key: value for key, value in manifest.pruned.items() if key != rel},  # made again: here again
    )
    write_manifest(model_dir, updated)
    log.info("recorded %s (sha256 %s) in %s", rel, updated.files[rel]["sha256"], model_dir / MANIFEST)
    return updated


def record_pruned(model_dir: Path, removed: list[str], pruned_for: list[str]) -> Manifest:
    """Record that ``removed`` (files the manifest lists) are about to be deleted because only the
    backends in ``pruned_for`` will be served from ``model_dir``. The directory must verify first.
    Call it before deleting: a prune interrupted after this leaves files that still verify."""
    manifest = verify_installed(model_dir)
    unknown = sorted(set(removed) - set(manifest.files))
    if unknown:
        raise ArtifactError(f"cannot prune {', '.join(unknown)}: not listed in {model_dir / MANIFEST}")
    updated = dataclasses.replace(
        manifest,
        pruned={**manifest.pruned, **{rel: manifest.files[rel] for rel in removed}},
        pruned_for=sorted(pruned_for),
    )
    write_manifest(model_dir, updated)
    return updated


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write ``manifest`` into ``directory`` atomically (a reader never sees half a file)."""
    staged = directory / f"{MANIFEST}.tmp"
    staged.write_text(json.dumps(dataclasses.asdict(manifest), indent=2) + "\n", encoding="utf-8")
    os.replace(staged, directory / MANIFEST)
