"""How the command line reads path arguments: ``~`` expanded, relative to the working directory."""

from __future__ import annotations

from pathlib import Path

from core.settings import user_path


def given_path(raw: str) -> Path:
    """A path as the user gave it, ``~`` expanded: output lines name files the way the user did."""
    return Path(raw).expanduser()


__all__ = ["given_path", "user_path"]
