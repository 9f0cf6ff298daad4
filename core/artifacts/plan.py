"""Which archive to download for a model, and which digests make it acceptable.

A :class:`Source` is what a user asks for (a catalog name, or a pinned custom archive); a
:class:`Plan` is what the installer then does with it (see :mod:`core.artifacts.install`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.artifacts.catalog import Catalog, load_catalog
from core.artifacts.download import check_url
from core.errors import CatalogError


@dataclass(frozen=True)
class Source:
    """A model to install: a catalog ``model``, or the archive at ``url`` pinned by ``sha256``.

    With ``mirror`` the archive at ``url`` is a mirror of the catalog ``model``: its sha256 is
    the caller's, and every catalog file pin of ``model`` must still pass.
    """

    model: str
    url: str | None = None
    sha256: str | None = None
    mirror: bool = False

    def __post_init__(self) -> None:
        if bool(self.url) != bool(self.sha256):
            raise CatalogError("a model URL needs its sha256, and a sha256 its URL: an unverified model is never used")

    @property
    def name(self) -> str:
        """Name the install goes by: the catalog name, or one derived from the pin."""
        return f"custom-{self.sha256[:12]}" if self.url and self.sha256 else self.model


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


def plan_for(source: Source, catalog: Catalog | None = None) -> Plan:
    """Turn a :class:`Source` into a :class:`Plan` following the rules in :mod:`core.artifacts.install`."""
    catalog = catalog or load_catalog()
    if source.url:
        check_url(source.url)
        entry = catalog.get(source.model) if source.mirror else None
        return Plan(
            source.name,
            source.url,
            {"sha256": str(source.sha256)},
            entry.files if entry else None,
            entry.name if entry else None,
        )
    entry = catalog.get(source.model)
    if entry.url is None:
        raise CatalogError(
            f"model {entry.name!r} has no public download URL; "
            "give its archive with MODEL_URL and MODEL_SHA256 (see its catalog note)"
        )
    return Plan(entry.name, entry.url, entry.archive, entry.files, entry.name)


def satisfies(manifest_archive: Mapping[str, str], manifest_files: Mapping[str, Mapping[str, str]], plan: Plan) -> bool:
    """True when an install's recorded digests carry every pin of ``plan``."""

    def covers(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
        return all(have.get(alg) == hexdigest for alg, hexdigest in want.items())

    return covers(manifest_archive, plan.archive_pins) and all(
        rel in manifest_files and covers(manifest_files[rel], pins) for rel, pins in (plan.file_pins or {}).items()
    )
