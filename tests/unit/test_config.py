import re
from pathlib import Path

import pytest

from config import ENV_VARS, ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_max():
    s = Settings.from_env({})
    assert s.port == 5000
    assert s.default_threshold == 0.7
    assert s.model == "ssd_mobilenet_v1"
    assert s.model_dir == s.assets_dir / "models" / "ssd_mobilenet_v1"


def test_custom_archive_gets_a_name_derived_from_its_pin():
    sha = "ab" * 32
    s = Settings.from_env({"MODEL_URL": "file:///tmp/x.tar.gz", "MODEL_SHA256": sha.upper(), "PORT": "8080"})
    assert s.model_name == "custom-" + sha[:12]
    assert s.port == 8080


@pytest.mark.parametrize(
    "env, message",
    [
        ({"MODEL_URL": "file:///x.tar.gz"}, "MODEL_URL needs MODEL_SHA256"),
        ({"MODEL_URL": "file:///x.tar.gz", "MODEL_SHA256": "abc"}, "64 lowercase hex"),
        ({"MODEL_SHA256": "ab" * 32}, "MODEL_URL is not"),
        ({"PORT": "http"}, "PORT must be an integer"),
        ({"PORT": "70000"}, "PORT must be in"),
        ({"DEFAULT_THRESHOLD": "1.5"}, "DEFAULT_THRESHOLD must be a number in"),
        ({"DEFAULT_THRESHOLD": "nan"}, "DEFAULT_THRESHOLD must be a number in"),
        ({"BACKEND": "onnx"}, "BACKEND must be"),
        ({"WORKERS": "0"}, "WORKERS must be >= 1"),
        ({"LOG_LEVEL": "loud"}, "not a logging level"),
        ({"MAX_UPLOAD_BYTES": "10"}, "MAX_UPLOAD_BYTES must be >= 1024"),
        ({"HOST": "0.0.0.0:80"}, "HOST must be an IP address or a host name"),
        ({"HOST": "example.com/x"}, "HOST must be an IP address or a host name"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


def test_readme_documents_every_environment_variable():
    readme = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in ENV_VARS if f"`{name}`" not in readme]
    assert not missing, f"docs/configuration.md's table lacks {missing}"


def test_host_is_loopback_unless_set_and_binds_as_gunicorn_expects():
    assert Settings.from_env({}).host == "127.0.0.1"
    assert Settings.from_env({}).bind == "127.0.0.1:5000"
    assert Settings.from_env({"HOST": "0.0.0.0", "PORT": "8080"}).bind == "0.0.0.0:8080"
    assert Settings.from_env({"HOST": "::"}).bind == "[::]:5000"
    assert Settings.from_env({"HOST": "LocalHost"}).bind == "localhost:5000"


def test_gunicorn_binds_host_and_port_from_the_settings(monkeypatch):
    import runpy

    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "5123")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == ["0.0.0.0:5123"]
    monkeypatch.delenv("HOST")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == ["127.0.0.1:5123"]


def test_every_relative_link_in_the_docs_resolves():
    """Links between README.md, docs/ and samples/README.md point at files (and headings) that exist."""
    import re

    def anchors(page: Path) -> set[str]:
        titles = re.findall(r"^#+ (.*)$", page.read_text(), re.M)
        return {re.sub(r"[^\w\- ]", "", t).strip().lower().replace(" ", "-") for t in titles}

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "samples" / "README.md"]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
