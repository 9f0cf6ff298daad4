"""Where the project's checked-in data lives: the catalog, label maps and (once fetched) ``models/``."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
COCO_LABELS = ASSETS_DIR / "labels" / "coco.txt"
