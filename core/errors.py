"""Exceptions the framework raises. ``api/errors.py`` maps each to an HTTP status, in one place."""
from __future__ import annotations


class DetectorError(Exception):
    """Base class: every error here carries a message that is safe to show a client."""


class InvalidInput(DetectorError):
    """The client sent something we cannot use (bad image, bad parameter)."""


class ImageTooLarge(InvalidInput):
    """The image declares more pixels than allowed; raised before decoding it."""


class ModelNotReady(DetectorError):
    """The model is still loading, or failed to load."""


class ModelLoadError(DetectorError):
    """Model files are missing, unverified or not in a format we can load."""
