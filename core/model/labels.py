"""Label maps: class id -> name, read from the two plain-text layouts model archives use."""

from __future__ import annotations

from pathlib import Path

from core.errors import ModelLoadError

UNUSED = {"???", ""}


def read_label_map(path: Path) -> dict[int, str]:
    """Read ``"<id> <name>"`` lines, or one name per line where the line number is the id.

    The second layout is TFLite's ``labelmap.txt``: line 0 is the background and ``???``
    marks ids no class uses.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelLoadError(f"cannot read label map {path}: {exc}") from exc
    pairs = [line.strip().split(maxsplit=1) for line in lines if line.strip()]
    if pairs and all(len(p) == 2 and p[0].isdigit() for p in pairs):
        return {int(i): name for i, name in pairs}
    return {i: name.strip() for i, name in enumerate(lines) if name.strip() not in UNUSED}
