"""Settings declared once as typed dataclass fields and read from the environment.

A field's environment variable is its name in capitals, its declared type says how the text is
parsed, and :func:`setting` adds the bounds. :class:`ModelSettings` holds what the framework's
own command line needs (which model, where it is installed, which backend, the image limit, the
log level); the service's ``config.Settings`` extends it with the server's settings, so every
variable is still declared in one place and ``core`` never imports the service.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from core.artifacts.plan import Source
from core.assets import ASSETS_DIR
from core.errors import DetectorError
from core.model.images import DEFAULT_MAX_PIXELS

#: Inference backends a model may be served with (``auto``: what the model file needs).
BACKENDS = ("auto", "tf", "tflite", "tflite-int8")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(DetectorError, ValueError):
    """A setting has a value the service cannot run with."""


def parse_fraction(raw: str) -> float:
    """A finite number in [0, 1] (thresholds). Raises ValueError otherwise, NaN included."""
    value = float(raw)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{raw!r} is not in [0, 1]")
    return value


#: A duration in seconds; a finite number > 0 (the type of the settings that are timeouts).
Seconds = float


def parse_seconds(raw: str) -> float:
    """A finite number of seconds > 0. Raises ValueError otherwise, NaN and infinity included."""
    value = float(raw)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{raw!r} is not a number of seconds > 0")
    return value


def user_path(raw: str | os.PathLike[str]) -> Path:
    """A path as a user types it: ``~`` expanded, relative to the working directory, symlinks resolved."""
    return Path(raw).expanduser().resolve()


def _bool(raw: str) -> bool:
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError


#: How the text of an environment variable becomes a value, by the field's declared type,
#: and what the error says it must be.
_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "str": (str, "text"),
    "str | None": (str, "text"),
    "int": (int, "an integer"),
    "float": (parse_fraction, "a number in [0, 1]"),
    "bool": (_bool, "true or false"),
    "Seconds": (parse_seconds, "a number of seconds > 0"),
    "Path": (user_path, "a path"),
    "Path | None": (Path, "a path"),
    "tuple[str, ...]": (
        lambda raw: tuple(item.strip() for item in raw.split(",") if item.strip()),
        "a comma-separated list",
    ),
}


def setting(default: Any, *, minimum: int | None = None, case: str | None = None, secret: bool = False) -> Any:
    """Declare a setting: ``minimum`` bounds an integer, ``case`` ("lower"/"upper") normalises text,
    ``secret`` keeps the value out of ``repr``."""
    return field(default=default, repr=not secret, metadata={"minimum": minimum, "case": case})


@dataclass(frozen=True)
class ModelSettings:
    """The model to serve and where it lives: what ``python -m core`` reads from the environment."""

    #: Catalog name of the model to serve (see ``assets/catalog.json``).
    model: str = setting("ssd_mobilenet_v1")
    #: URL (http, https or file) of a custom model archive; needs ``model_sha256``.
    model_url: str | None = setting(None)
    #: SHA-256 of the archive at ``model_url``.
    model_sha256: str | None = setting(None, case="lower")
    #: Where verified model files are installed (``<assets_dir>/models/<name>``).
    assets_dir: Path = setting(ASSETS_DIR)
    #: Inference backend: ``tf``, ``tflite`` (float), ``tflite-int8`` (calibrated int8; the float model if it failed
    #: its accuracy gate) or ``auto`` (what the model file needs).
    backend: str = setting("auto", case="lower")
    #: Largest accepted image in pixels (width*height), checked before decoding.
    max_image_pixels: int = setting(DEFAULT_MAX_PIXELS, minimum=1)
    #: Python logging level.
    log_level: str = setting("INFO", case="upper")

    def __post_init__(self) -> None:
        for f in fields(self):
            minimum = f.metadata.get("minimum")
            value = getattr(self, f.name)
            if minimum is not None and value < minimum:
                raise ConfigError(f"{f.name.upper()} must be >= {minimum}, got {value}")
        if self.model_url and not self.model_sha256:
            raise ConfigError("MODEL_URL needs MODEL_SHA256: an unverified model is never used")
        if self.model_sha256 and not _SHA256.match(self.model_sha256):
            raise ConfigError("MODEL_SHA256 must be 64 lowercase hex digits")
        if self.model_sha256 and not self.model_url:
            raise ConfigError("MODEL_SHA256 is set but MODEL_URL is not")
        if self.backend not in BACKENDS:
            raise ConfigError(f"BACKEND must be {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL {self.log_level!r} is not a logging level")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Read every declared setting from its environment variable (``os.environ`` by default);
        an unset or blank variable keeps the default."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(f.name.upper(), "").strip()
            if raw:
                values[f.name] = _parse(f, raw)
        return cls(**values)

    @property
    def source(self) -> Source:
        """The model to serve, as the fetcher takes it."""
        return Source(self.model, self.model_url, self.model_sha256)

    @property
    def model_name(self) -> str:
        """Name the installed model goes by: the catalog name, or one derived from the pin."""
        return self.source.name

    @property
    def models_dir(self) -> Path:
        """Where the fetcher installs models, one directory each."""
        return self.assets_dir / "models"

    @property
    def model_dir(self) -> Path:
        """Directory holding the verified, extracted model files."""
        return self.models_dir / self.model_name


def _parse(f: Field[Any], raw: str) -> Any:
    """The value of setting ``f`` from the text ``raw``, or a :class:`ConfigError` naming it."""
    name = f.name.upper()
    case = f.metadata.get("case")
    if case:
        raw = raw.lower() if case == "lower" else raw.upper()
    parse, expected = _PARSERS[str(f.type)]
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {expected}, got {raw!r}") from None
