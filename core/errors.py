"""Exceptions the framework raises, under one root. ``api/errors.py`` maps them to HTTP statuses.

Every error here carries a message that is safe to show a user. The supply chain's errors
(``core.artifacts``) and the settings' ``core.settings.ConfigError`` derive from the same root, so a
caller that turns any failure into one clear line catches :class:`DetectorError` (and ``OSError``).
"""

from __future__ import annotations


class DetectorError(Exception):
    """The root of every error the framework raises on purpose."""


class InvalidInput(DetectorError):
    """The client sent something we cannot use (bad image, bad parameter)."""


class ImageTooLarge(InvalidInput):
    """The image declares more pixels than allowed; raised before decoding it."""


class ModelNotReady(DetectorError):
    """The model is still loading, or failed to load."""


class ModelLoadError(DetectorError):
    """Model files are missing, unverified or not in a format we can load."""


class ArtifactError(DetectorError):
    """The fetcher refused or failed to download, verify or install model files."""


class CatalogError(DetectorError, ValueError):
    """The catalog file is malformed, or a requested model is not in it."""


class Overloaded(DetectorError):
    """The worker is at capacity (e.g. its decode memory budget); the client should retry."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
