"""Service settings: the one place that reads environment variables.

Every other module takes a :class:`Settings` object instead of calling ``os.environ``
so that tests can build settings explicitly and the documentation (README
configuration table) has a single source to match.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parent
DEFAULT_ASSETS_DIR = ROOT / "assets"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: A browser origin as sent in the Origin header: scheme, host and optional port, nothing else.
_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?$")
#: Printable ASCII without spaces, so the key survives any HTTP header; long enough not to be guessed.
_API_KEY = re.compile(r"^[\x21-\x7e]{16,256}$")


def usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset or taskset), not all the host's cores."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def parse_fraction(raw: str) -> float:
    """A finite number in [0, 1] (thresholds). Raises ValueError otherwise, NaN included."""
    value = float(raw)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{raw!r} is not in [0, 1]")
    return value


def _float01(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_fraction(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number in [0, 1], got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list; blanks between commas are ignored."""
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Typed, validated configuration. Field docs are the README's configuration table."""

    #: Catalog name of the model to serve (see ``assets/catalog.json``).
    model: str = "ssd_mobilenet_v1"
    #: URL (http, https or file) of a custom model archive; needs ``model_sha256``.
    model_url: str | None = None
    #: SHA-256 of the archive at ``model_url``.
    model_sha256: str | None = None
    #: Where verified model files are installed (``<assets_dir>/models/<name>``).
    assets_dir: Path = DEFAULT_ASSETS_DIR
    #: Inference backend: ``auto`` picks the model's preferred one.
    backend: str = "auto"
    #: TCP port gunicorn listens on.
    port: int = 5000
    #: Threshold used when a request gives none (MAX's default).
    default_threshold: float = 0.7
    #: Largest accepted request body in bytes; larger bodies get 413.
    max_upload_bytes: int = 10 * 1024 * 1024
    #: Largest accepted image in pixels (width*height), checked before decoding.
    max_image_pixels: int = 40_000_000
    #: gunicorn worker processes; each loads its own copy of the model.
    workers: int = 1
    #: Request threads per worker; they share the worker's model.
    threads: int = 4
    #: Inferences a worker runs at once, one core each (0 = the cores divided by WORKERS).
    engine_threads: int = 0
    #: Seconds a worker may stay silent before gunicorn restarts it.
    timeout: int = 120
    #: Seconds in-flight requests get to finish after SIGTERM.
    graceful_timeout: int = 30
    #: Python logging level.
    log_level: str = "INFO"
    #: Serve the browser app at ``/app``; false removes the route (``/app`` answers 404).
    webapp_enabled: bool = True
    #: Browser origins (``https://host[:port]``) allowed to call the API cross-origin; empty: CORS off.
    cors_origins: tuple[str, ...] = ()
    #: When set, ``/model/predict`` and ``/model/annotate`` need it (``X-API-Key`` or ``Authorization: Bearer``).
    api_key: str | None = field(default=None, repr=False)
    #: Seconds an inference request waits for a model that is still loading before it gets 503.
    load_wait_seconds: int = 20
    #: Where gunicorn workers share metrics; ``gunicorn.conf.py`` sets it to a fresh temporary directory.
    prometheus_multiproc_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.model_url and not self.model_sha256:
            raise ConfigError("MODEL_URL needs MODEL_SHA256: an unverified model is never used")
        if self.model_sha256 and not _SHA256.match(self.model_sha256):
            raise ConfigError("MODEL_SHA256 must be 64 lowercase hex digits")
        if self.model_sha256 and not self.model_url:
            raise ConfigError("MODEL_SHA256 is set but MODEL_URL is not")
        if self.backend not in {"auto", "tf", "tflite"}:
            raise ConfigError(f"BACKEND must be auto, tf or tflite, got {self.backend!r}")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"PORT must be in 1..65535, got {self.port}")
        if self.workers < 1 or self.threads < 1:
            raise ConfigError("WORKERS and THREADS must be >= 1")
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL {self.log_level!r} is not a logging level")
        for origin in self.cors_origins:
            if not _ORIGIN.match(origin):
                raise ConfigError(f"CORS_ORIGINS entries must look like https://host[:port], got {origin!r}")
        if self.api_key is not None and not _API_KEY.match(self.api_key):
            raise ConfigError("API_KEY must be 16 to 256 printable ASCII characters without spaces")
        if self.load_wait_seconds < 0:
            raise ConfigError(f"LOAD_WAIT_SECONDS must be >= 0, got {self.load_wait_seconds}")
        if self.prometheus_multiproc_dir is not None and not self.prometheus_multiproc_dir.is_dir():
            raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR {self.prometheus_multiproc_dir} is not a directory")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read settings from environment variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        d = cls()
        return cls(
            model=_str(env, "MODEL", d.model),
            model_url=env.get("MODEL_URL", "").strip() or None,
            model_sha256=(env.get("MODEL_SHA256", "").strip().lower() or None),
            assets_dir=Path(_str(env, "ASSETS_DIR", str(d.assets_dir))).resolve(),
            backend=_str(env, "BACKEND", d.backend).lower(),
            port=_int(env, "PORT", d.port, minimum=1),
            default_threshold=_float01(env, "DEFAULT_THRESHOLD", d.default_threshold),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", d.max_upload_bytes, minimum=1024),
            max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", d.max_image_pixels, minimum=1),
            workers=_int(env, "WORKERS", d.workers, minimum=1),
            threads=_int(env, "THREADS", d.threads, minimum=1),
            engine_threads=_int(env, "ENGINE_THREADS", d.engine_threads),
            timeout=_int(env, "TIMEOUT", d.timeout, minimum=1),
            graceful_timeout=_int(env, "GRACEFUL_TIMEOUT", d.graceful_timeout, minimum=1),
            log_level=_str(env, "LOG_LEVEL", d.log_level).upper(),
            webapp_enabled=_bool(env, "WEBAPP_ENABLED", d.webapp_enabled),
            cors_origins=tuple(origin.lower() for origin in _list(env, "CORS_ORIGINS")),
            api_key=env.get("API_KEY", "").strip() or None,
            load_wait_seconds=_int(env, "LOAD_WAIT_SECONDS", d.load_wait_seconds),
            prometheus_multiproc_dir=_path(env, "PROMETHEUS_MULTIPROC_DIR"),
        )

    @property
    def effective_engine_threads(self) -> int:
        """ENGINE_THREADS, or the cores split evenly between the workers, so that WORKERS x engine
        threads never oversubscribes the machine (README, Performance)."""
        if self.engine_threads:
            return self.engine_threads
        return max(1, usable_cpus() // self.workers)

    @property
    def model_name(self) -> str:
        """Name the installed model goes by: the catalog name, or one derived from the pin."""
        if self.model_url and self.model_sha256:
            return f"custom-{self.model_sha256[:12]}"
        return self.model

    @property
    def model_dir(self) -> Path:
        """Directory holding the verified, extracted model files."""
        return self.assets_dir / "models" / self.model_name


#: Every environment variable the service reads; the README table must list each one.
ENV_VARS = tuple(f.name.upper() for f in fields(Settings))
