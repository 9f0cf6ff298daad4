"""What a request handler needs from the app it runs in: the worker's model holder and the settings."""

from __future__ import annotations

from flask import current_app

from config import Settings
from core.model.budget import DecodeBudget
from core.serving.holder import ModelHolder


def holder() -> ModelHolder:
    """The current worker's model holder."""
    holder: ModelHolder = current_app.extensions["model_holder"]
    return holder


def decode_budget() -> DecodeBudget:
    """The current worker's budget on the memory decoding may hold (``DECODE_BUDGET_MB``)."""
    budget: DecodeBudget = current_app.extensions["decode_budget"]
    return budget


def settings() -> Settings:
    """The settings the app was built with."""
    settings: Settings = current_app.extensions["settings"]
    return settings
