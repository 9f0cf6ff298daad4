"""``python -m core fetch`` and ``verify``: install the configured model, or re-check an install.

Defaults come from MODEL, MODEL_URL, MODEL_SHA256 and ASSETS_DIR; the flags override them.
``--model`` together with ``--url`` installs a mirror of that catalog model (its file pins are
checked). ``fetch`` prints the model directory as its last stdout line.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from core.artifacts.download import UnsupportedURLError
from core.artifacts.install import ensure_model
from core.artifacts.integrity import IntegrityError
from core.artifacts.manifest import verify_installed
from core.artifacts.plan import Source, plan_for, satisfies
from core.cli.paths import user_path
from core.errors import ArtifactError, CatalogError
from core.settings import ConfigError, ModelSettings


def register(commands: argparse._SubParsersAction) -> None:
    for name, text in (
        ("fetch", "download, verify and install the model (no-op if already installed)"),
        ("verify", "re-check an installed model against its manifest and the requested pins"),
    ):
        p = commands.add_parser(name, help=text, description=f"{text}. {__doc__.splitlines()[2]}")
        p.add_argument("--model", help="catalog model name (default: MODEL)")
        p.add_argument("--url", help="http(s) or file URL of the archive (default: MODEL_URL)")
        p.add_argument("--sha256", help="sha256 of the archive at --url (default: MODEL_SHA256)")
        p.add_argument("--assets-dir", type=user_path, help="install under DIR/models (default: ASSETS_DIR)")
        p.add_argument("--no-progress", action="store_true", help="do not show download progress")
        p.set_defaults(run=run)


def _source(args: argparse.Namespace) -> tuple[Source, ModelSettings]:
    """The model to fetch: the settings from the environment, overridden by the flags."""
    if bool(args.url) != bool(args.sha256):
        raise ConfigError("--url and --sha256 go together")
    settings = ModelSettings.from_env()
    if args.assets_dir:
        settings = dataclasses.replace(settings, assets_dir=args.assets_dir)
    if args.model:
        settings = dataclasses.replace(settings, model=args.model, model_url=None, model_sha256=None)
    if args.url:
        settings = dataclasses.replace(settings, model_url=args.url, model_sha256=args.sha256.strip().lower())
    return dataclasses.replace(settings.source, mirror=bool(args.model and args.url)), settings


#: Longest error line printed: a hostile archive must not make the fetcher print megabytes.
MAX_ERROR_CHARS = 500


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line, at most :data:`MAX_ERROR_CHARS` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def run(args: argparse.Namespace) -> int:
    try:
        source, settings = _source(args)
        logging.basicConfig(level=settings.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        if args.command == "fetch":
            path = ensure_model(source, settings.models_dir, show_progress=not args.no_progress)
        else:
            path = settings.models_dir / source.name
            manifest = verify_installed(path)
            if not satisfies(manifest.archive, manifest.files, plan_for(source)):
                raise IntegrityError(f"{path} holds a model installed from other pins")
    except (ConfigError, CatalogError, UnsupportedURLError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (ArtifactError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(path)
    return 0
