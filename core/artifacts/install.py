"""Fetch, verify and atomically install model files; also ``python -m core fetch``.

What is installed, and how it is verified (all in ``<ASSETS_DIR>/models/<name>``):

* **Catalog model** (``MODEL=name``, no MODEL_URL): the entry's ``url`` is downloaded,
  the archive must match every archive pin of the entry, then only the entry's
  ``files`` are extracted and each must match all its pins. Directory: ``<name>``.
* **Custom archive** (``MODEL_URL`` + ``MODEL_SHA256``): the archive must match
  MODEL_SHA256 and everything in it is kept, since that digest covers it. MODEL is
  ignored. Directory: ``custom-<sha256[:12]>``.
* **Mirror of a catalog model** (``fetch --model NAME --url URL --sha256 HEX`` on the
  command line, or ``ensure_model(settings, mirror_of=NAME)``): the archive must match
  HEX -- not the catalog's archive pins, because a mirror may repack the archive --
  and every catalog *file* pin of NAME must pass; only those files are kept.
  Directory: as for a custom archive; the manifest records NAME.

Archive digests are checked before anything is extracted. Extraction goes to a temp
dir beside the target; only after every check passes is ``.manifest.json`` written and
the dir renamed into place, so a failure installs nothing. A later call whose
installed manifest carries the requested pins, and whose files still hash to what the
manifest says, downloads nothing. Installs of the same model are serialised with a
lock file, so several workers starting at once download it once.

"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from core.artifacts.catalog import Catalog
from core.artifacts.download import NetworkError, RetryPolicy, download, redact
from core.artifacts.extract import UnsafeArchiveError, extract
from core.artifacts.integrity import IntegrityError, check_digests, hash_file
from core.artifacts.manifest import MANIFEST, Manifest, read_manifest, verify_installed, write_manifest
from core.artifacts.plan import Plan, Source, plan_for, satisfies
from core.errors import ArtifactError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile or broken archive from filling the disk."""

    archive_bytes: int = 1 << 30
    extracted_bytes: int = 2 << 30
    entries: int = 10_000


def installed_model_dir(source: Source, models_dir: Path, *, catalog: Catalog | None = None) -> Path | None:
    """``<models_dir>/<source.name>`` if it holds exactly what ``source`` asks for and still verifies, else None."""
    return _installed(plan_for(source, catalog), models_dir / source.name)


def ensure_model(
    source: Source,
    models_dir: Path,
    *,
    catalog: Catalog | None = None,
    limits: Limits = Limits(),
    retry: RetryPolicy = RetryPolicy(),
    show_progress: bool = True,
) -> Path:
    """Return the verified ``<models_dir>/<source.name>``, downloading and installing it if needed."""
    plan = plan_for(source, catalog)
    models = Path(models_dir)
    target = models / source.name
    models.mkdir(parents=True, exist_ok=True)
    with _locked(models / f".{plan.name}.lock"):
        if _installed(plan, target):
            log.info("%s is already installed and verified in %s; nothing downloaded", plan.name, target)
            return target
        for stale in models.glob(f".{plan.name}.partial-*"):
            log.info("removing %s left by an interrupted install", stale)
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{plan.name}.partial-", dir=models))
        try:
            _install(plan, work, target, limits, retry, sys.stderr if show_progress else None)
        except NetworkError as exc:
            if source.url:  # the user's own URL: they know where it points
                raise
            # A catalog model from the internet, and no internet: say what works offline.
            example = Path(urlsplit(plan.url).path).name or "model.tar.gz"
            raise NetworkError(
                f"{exc}; offline? point MODEL_URL and MODEL_SHA256 at a local archive, "
                f"e.g. MODEL_URL=file:///path/to/{example} MODEL_SHA256=<sha256>"
            ) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _installed(plan: Plan, target: Path) -> Path | None:
    if not (target / MANIFEST).is_file():
        return None
    try:
        manifest = read_manifest(target)
        if not satisfies(manifest.archive, manifest.files, plan):
            log.info("%s was installed from other pins; it will be replaced", target)
            return None
        verify_installed(target)
    except ArtifactError as exc:
        log.warning("%s does not verify (%s); it will be fetched again", target, exc)
        return None
    return target


def _install(plan: Plan, work: Path, target: Path, limits: Limits, retry: RetryPolicy, progress: TextIO | None) -> None:
    basename = Path(urlsplit(plan.url).path).name or "model"
    label = f"archive {basename}"
    archive, tree = work / "download", work / "tree"
    tree.mkdir()
    digests = download(
        plan.url, archive, algorithms=plan.archive_pins, retry=retry, max_bytes=limits.archive_bytes, progress=progress
    )
    check_digests(label, plan.archive_pins, digests)
    log.info("verified %s: %s", label, ", ".join(f"{a}={digests[a]}" for a in sorted(plan.archive_pins)))
    pinned = plan.file_pins
    written = extract(
        archive,
        tree,
        plain_name=basename,
        keep=(lambda name: name in pinned) if pinned is not None else (lambda _: True),
        max_bytes=limits.extracted_bytes,
        max_entries=limits.entries,
    )
    archive.unlink()
    if MANIFEST in written:
        raise UnsafeArchiveError(f"{label} contains {MANIFEST}, a name the installer reserves")
    missing = sorted(set(pinned or ()) - set(written))
    if missing:
        raise IntegrityError(f"{label} lacks pinned file(s): {', '.join(missing)}")
    if not written:
        raise UnsafeArchiveError(f"{label} contains no files")
    files: dict[str, dict[str, str]] = {}
    for rel in sorted(written):
        pins = (pinned or {}).get(rel, {})
        files[rel] = hash_file(tree / rel, pins)
        check_digests(rel, pins, files[rel])
    log.info("verified %d file(s) of %s", len(files), label)
    manifest = Manifest(
        name=plan.name,
        model=plan.model,
        url=redact(plan.url),
        archive=digests,
        files=files,
        installed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_manifest(tree, manifest)
    tree.chmod(0o755)
    _swap_in(tree, target, work / "previous")
    log.info("installed %s into %s", plan.model or plan.name, target)


def _swap_in(tree: Path, target: Path, trash: Path) -> None:
    """Rename ``tree`` to ``target``, moving an older install to ``trash`` (same filesystem)."""
    if target.exists() or target.is_symlink():
        os.rename(target, trash)
        log.info("replacing the previous install in %s", target)
    try:
        os.rename(tree, target)
    except OSError:
        if trash.exists():
            os.rename(trash, target)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
