"""What a request handler needs from the app it runs in: the worker's model holder and the settings."""

from __future__ import annotations

from flask import current_app

from config import Settings
from core.serving.holder import ModelHolder


def holder() -> ModelHolder:
    """The current worker's model holder."""
    holder: ModelHolder = current_app.extensions["model_holder"]
    return holder


def settings() -> Settings:
    """The settings the app was built with."""
    settings: Settings = current_app.extensions["settings"]
    return settings
