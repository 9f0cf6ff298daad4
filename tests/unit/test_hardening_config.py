"""The hardening settings: parsed from the environment, validated, and the API key never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, Settings

KEY = "s3cret-key-0123456789"


def test_defaults_leave_cors_and_the_api_key_off() -> None:
    settings = Settings.from_env({})
    assert settings.cors_origins == ()
    assert settings.api_key is None
    assert settings.load_wait_seconds == 20
    assert settings.prometheus_multiproc_dir is None


def test_cors_origins_are_a_comma_separated_lowercased_list() -> None:
    settings = Settings.from_env({"CORS_ORIGINS": " https://App.Example.com , http://localhost:3000,, "})
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://example.com/",
        "example.com",
        "ftp://example.com",
        "https://example.com/path",
        "https://exa mple.com",
    ],
)
def test_cors_origins_must_be_bare_origins(origin: str) -> None:
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": origin})


def test_api_key_is_read_and_hidden_from_repr() -> None:
    settings = Settings.from_env({"API_KEY": KEY})
    assert settings.api_key == KEY
    assert KEY not in repr(settings)


@pytest.mark.parametrize("key", ["short", "has a space in it ok", "\u00e9" * 20])
def test_weak_or_unsendable_api_keys_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="API_KEY"):
        Settings.from_env({"API_KEY": key})


def test_load_wait_seconds_is_a_non_negative_integer() -> None:
    assert Settings.from_env({"LOAD_WAIT_SECONDS": "0"}).load_wait_seconds == 0
    with pytest.raises(ConfigError, match="LOAD_WAIT_SECONDS"):
        Settings.from_env({"LOAD_WAIT_SECONDS": "-1"})


def test_metrics_dir_must_exist(tmp_path: Path) -> None:
    assert Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).prometheus_multiproc_dir == tmp_path
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})
