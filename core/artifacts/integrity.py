"""Digest pins, and the error for bytes that are not the pinned ones.

A *pin* is a mapping ``{algorithm: lowercase hex digest}``. Every algorithm in a pin
is checked; md5 is accepted only next to a stronger one because upstream projects
(e.g. MAX's ``md5sums.txt``) sometimes publish nothing better, and an md5 alone does
not protect against a crafted file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from core.errors import ArtifactError

#: Algorithms a pin may use, with the length of their hex digests.
ALGORITHMS: dict[str, int] = {
    name: hashlib.new(name).digest_size * 2 for name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
}
#: Always computed, so manifests can be re-verified with a strong hash.
PRIMARY = "sha256"
_CHUNK = 1 << 20


class IntegrityError(ArtifactError):
    """A file's bytes are not the pinned ones."""


def validate_pin(pin: Mapping[str, str], where: str) -> dict[str, str]:
    """Return ``pin`` as a plain dict after checking algorithms and hex lengths.

    Raises ``ValueError`` naming ``where`` so catalog and CLI errors point at the culprit.
    """
    if not isinstance(pin, Mapping) or not pin:
        raise ValueError(f"{where}: digests must be a non-empty object of algorithm -> hex")
    out: dict[str, str] = {}
    for alg, hexdigest in pin.items():
        if alg not in ALGORITHMS:
            raise ValueError(f"{where}: unknown digest algorithm {alg!r} (known: {', '.join(ALGORITHMS)})")
        if not isinstance(hexdigest, str) or len(hexdigest) != ALGORITHMS[alg] or not _is_lower_hex(hexdigest):
            raise ValueError(f"{where}: {alg} must be {ALGORITHMS[alg]} lowercase hex digits, got {hexdigest!r}")
        out[alg] = hexdigest
    if set(out) == {"md5"}:
        raise ValueError(f"{where}: an md5 pin needs a stronger companion (sha1 or better)")
    return out


def _is_lower_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


class MultiHash:
    """Feeds the same bytes to several hash algorithms at once (one pass over the data)."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._hashes = {alg: hashlib.new(alg) for alg in sorted({PRIMARY, *algorithms})}

    def update(self, data: bytes) -> None:
        for h in self._hashes.values():
            h.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {alg: h.hexdigest() for alg, h in self._hashes.items()}


def hash_file(path: Path, algorithms: Iterable[str] = ()) -> dict[str, str]:
    """Digests of ``path`` for ``algorithms`` plus sha256."""
    mh = MultiHash(algorithms)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            mh.update(chunk)
    return mh.hexdigests()


def check_digests(label: str, expected: Mapping[str, str], actual: Mapping[str, str]) -> None:
    """Raise :class:`IntegrityError` naming ``label`` unless every expected digest matches."""
    bad = [
        f"{alg} expected {want}, got {actual.get(alg)}"
        for alg, want in sorted(expected.items())
        if actual.get(alg) != want
    ]
    if bad:
        raise IntegrityError(f"digest mismatch for {label}: " + "; ".join(bad))
