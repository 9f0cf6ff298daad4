"""Fetch, verify and atomically install model files; also ``python -m core.artifacts``.

What is installed, and how it is verified (all in ``<ASSETS_DIR>/models/<settings.model_name>``):

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

CLI exit codes: 0 success (the last stdout line is the model dir), 1 the fetch or the
verification failed, 2 bad usage or configuration (unknown model, URL scheme, ...).
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Mapping, Sequence, TextIO
from urllib.parse import urlsplit

from config import ConfigError, Settings
from core.catalog import Catalog, CatalogError, is_safe_relative, load_catalog
from core.download import RetryPolicy, UnsupportedURLError, check_url, download, redact
from core.extract import UnsafeArchiveError, extract
from core.integrity import ArtifactError, IntegrityError, check_digests, hash_file

log = logging.getLogger("core.artifacts")

MANIFEST = ".manifest.json"


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile or broken archive from filling the disk."""

    archive_bytes: int = 1 << 30
    extracted_bytes: int = 2 << 30
    entries: int = 10_000


@dataclass(frozen=True)
class Plan:
    """What to download and which digests make it acceptable."""

    name: str
    url: str
    archive_pins: Mapping[str, str]
    #: Files to keep with their pins; None keeps every file (custom archive).
    file_pins: Mapping[str, Mapping[str, str]] | None
    #: Catalog name, when the files are a catalog model's.
    model: str | None


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


def plan_for(settings: Settings, catalog: Catalog | None = None, mirror_of: str | None = None) -> Plan:
    """Turn settings into a :class:`Plan` following the rules in the module docstring."""
    catalog = catalog or load_catalog()
    if settings.model_url:
        check_url(settings.model_url)
        entry = catalog.get(mirror_of) if mirror_of else None
        return Plan(settings.model_name, settings.model_url, {"sha256": str(settings.model_sha256)},
                    entry.files if entry else None, entry.name if entry else None)
    if mirror_of:
        raise ConfigError("a mirror of a catalog model needs a URL and its sha256")
    entry = catalog.get(settings.model)
    if entry.url is None:
        raise CatalogError(f"model {entry.name!r} has no public download URL; "
                           "give its archive with MODEL_URL and MODEL_SHA256 (see its catalog note)")
    return Plan(entry.name, entry.url, entry.archive, entry.files, entry.name)


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
    """Re-hash every file the manifest lists (but ``except_for``); :class:`IntegrityError` on any difference."""
    manifest = read_manifest(model_dir)
    for rel, expected in manifest.files.items():
        if rel == except_for:
            continue
        path = model_dir / rel
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


def record_derived_file(model_dir: Path, rel: str) -> Manifest:
    """Add a file generated from the verified ones (``core.optimize``'s .tflite) to the manifest,
    so the service re-verifies it like the rest. The model dir must verify first, but for an
    earlier version of ``rel`` itself: running ``core.optimize`` again replaces its own output."""
    check_derivable(model_dir, rel)
    manifest = verify_installed(model_dir, except_for=rel)
    if not (model_dir / rel).is_file():
        raise ArtifactError(f"{rel!r} is not a file inside {model_dir}")
    updated = dataclasses.replace(manifest, files={**manifest.files, rel: hash_file(model_dir / rel)},
                                  derived=sorted({*manifest.derived, rel}))
    staged = model_dir / f"{MANIFEST}.tmp"
    staged.write_text(json.dumps(dataclasses.asdict(updated), indent=2) + "\n", encoding="utf-8")
    os.replace(staged, model_dir / MANIFEST)
    log.info("recorded %s (sha256 %s) in %s", rel, updated.files[rel]["sha256"], model_dir / MANIFEST)
    return updated


def installed_model_dir(settings: Settings, *, catalog: Catalog | None = None,
                        mirror_of: str | None = None) -> Path | None:
    """The model dir if it holds exactly what ``settings`` ask for and still verifies, else None."""
    plan = plan_for(settings, catalog, mirror_of)
    return _installed(plan, settings.model_dir)


def ensure_model(settings: Settings, *, catalog: Catalog | None = None, mirror_of: str | None = None,
                 limits: Limits = Limits(), retry: RetryPolicy = RetryPolicy(),
                 show_progress: bool = True) -> Path:
    """Return the verified model dir for ``settings``, downloading and installing it if needed."""
    plan = plan_for(settings, catalog, mirror_of)
    target = settings.model_dir
    models = target.parent
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
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _installed(plan: Plan, target: Path) -> Path | None:
    if not (target / MANIFEST).is_file():
        return None
    try:
        manifest = read_manifest(target)
        if not _satisfies(manifest, plan):
            log.info("%s was installed from other pins; it will be replaced", target)
            return None
        verify_installed(target)
    except ArtifactError as exc:
        log.warning("%s does not verify (%s); it will be fetched again", target, exc)
        return None
    return target


def _satisfies(manifest: Manifest, plan: Plan) -> bool:
    def covers(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
        return all(have.get(alg) == hexdigest for alg, hexdigest in want.items())

    return covers(manifest.archive, plan.archive_pins) and all(
        rel in manifest.files and covers(manifest.files[rel], pins)
        for rel, pins in (plan.file_pins or {}).items())


def _install(plan: Plan, work: Path, target: Path, limits: Limits, retry: RetryPolicy,
             progress: TextIO | None) -> None:
    basename = Path(urlsplit(plan.url).path).name or "model"
    label = f"archive {basename}"
    archive, tree = work / "download", work / "tree"
    tree.mkdir()
    digests = download(plan.url, archive, algorithms=plan.archive_pins, retry=retry,
                       max_bytes=limits.archive_bytes, progress=progress)
    check_digests(label, plan.archive_pins, digests)
    log.info("verified %s: %s", label, ", ".join(f"{a}={digests[a]}" for a in sorted(plan.archive_pins)))
    pinned = plan.file_pins
    written = extract(archive, tree, plain_name=basename,
                      keep=(lambda name: name in pinned) if pinned is not None else (lambda _: True),
                      max_bytes=limits.extracted_bytes, max_entries=limits.entries)
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
    manifest = Manifest(name=plan.name, model=plan.model, url=redact(plan.url), archive=digests, files=files,
                        installed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    (tree / MANIFEST).write_text(json.dumps(dataclasses.asdict(manifest), indent=2) + "\n", encoding="utf-8")
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.artifacts", description=(
        "Fetch and verify model files. Defaults come from MODEL, MODEL_URL, MODEL_SHA256 and ASSETS_DIR. "
        "--model together with --url installs a mirror of that catalog model (its file pins are checked)."))
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("fetch", "download, verify and install the model (no-op if already installed)"),
                       ("verify", "re-check an installed model against its manifest and the requested pins")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--model", help="catalog model name (default: MODEL)")
        p.add_argument("--url", help="http(s) or file URL of the archive (default: MODEL_URL)")
        p.add_argument("--sha256", help="sha256 of the archive at --url (default: MODEL_SHA256)")
        p.add_argument("--assets-dir", type=Path, help="install under DIR/models (default: ASSETS_DIR)")
        p.add_argument("--no-progress", action="store_true", help="do not show download progress")
    return parser


def _cli_settings(args: argparse.Namespace) -> tuple[Settings, str | None]:
    """Settings from the environment overridden by the command line, plus the mirrored model."""
    if bool(args.url) != bool(args.sha256):
        raise ConfigError("--url and --sha256 go together")
    changes: dict[str, object] = {}
    if args.assets_dir:
        changes["assets_dir"] = args.assets_dir.resolve()
    if args.model:
        changes.update(model=args.model, model_url=None, model_sha256=None)
    if args.url:
        changes.update(model_url=args.url, model_sha256=args.sha256.strip().lower())
    settings = dataclasses.replace(Settings.from_env(), **changes)
    return settings, (args.model if args.model and args.url else None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m core.artifacts``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings, mirror_of = _cli_settings(args)
        logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                            format="%(levelname)s %(name)s: %(message)s")
        if args.command == "fetch":
            path = ensure_model(settings, mirror_of=mirror_of, show_progress=not args.no_progress)
        else:
            plan = plan_for(settings, mirror_of=mirror_of)
            if not _satisfies(verify_installed(settings.model_dir), plan):
                raise IntegrityError(f"{settings.model_dir} holds a model installed from other pins")
            path = settings.model_dir
    except (ConfigError, CatalogError, UnsupportedURLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
