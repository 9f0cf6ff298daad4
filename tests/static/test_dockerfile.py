"""The Dockerfile: hadolint-clean, and consistent with what the service reads and needs."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

from config import Settings
from tests.static.dockerfile import DOCKERFILE, ROOT, runtime_stage, stage, stages
from tests.support.tools import dev_tool


def test_hadolint_passes():
    run = subprocess.run(
        [dev_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """The lint test above can fail: the same call flags a root, unpinned, apt-installing image."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nCMD python app.py\n")
    run = subprocess.run(
        [dev_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "DL3006" in run.stdout  # untagged base image


def test_builder_fetches_the_model_through_the_verified_fetcher():
    builder = stage("model")
    assert any("python -m core fetch" in rest for rest in builder.args("RUN"))
    assert set(builder.build_args()) >= {"MODEL", "MODEL_URL", "MODEL_SHA256"}


def test_runtime_is_slim_python_311_without_build_tools():
    """The runtime is python:3.11-slim squashed (stage ``base``, copied whole into ``FROM scratch``,
    so the files deleted there are not in the image), and installs nothing itself."""
    runtime, base = runtime_stage(), stage("base")
    assert base.base == "python:3.11-slim"
    assert runtime.base == "scratch" and runtime.args("COPY")[0] == "--from=base / /"
    assert not runtime.args("RUN")
    for rest in base.args("RUN"):
        assert "apt-get" not in rest and "pip install" not in rest, rest


def test_the_squashed_base_keeps_what_the_base_image_set():
    """FROM scratch drops the base image's ENV: the runtime sets PATH (the venv first, then
    python:3.11-slim's) and LANG again; the trim covers both Python layouts (/usr/local: the
    official image, /usr/lib: Debian's, as in container-smoke's stand-in) and keeps dpkg's database."""
    env = runtime_stage().env()
    assert env["PATH"].split(":")[:3] == ["/opt/venv/bin", "/usr/local/bin", "/usr/local/sbin"]
    assert env["LANG"] == "C.UTF-8"
    trim = " ".join(stage("base").args("RUN"))
    assert "/usr/local/lib/python3.11" in trim and "/usr/lib/python3.11" in trim
    assert "useradd" in trim and "--uid 10001" in trim
    assert "/var/lib/dpkg" not in trim


def test_model_build_args_become_runtime_env_with_the_settings_defaults():
    """The service must serve the model the builder fetched: same names, same defaults as config."""
    runtime = runtime_stage()
    defaults = Settings()
    args = runtime.build_args()
    assert args["MODEL"] == stage("model").build_args()["MODEL"] == defaults.model
    env = runtime.env()
    for name in ("MODEL", "MODEL_URL", "MODEL_SHA256"):
        assert env[name] == f"${{{name}}}"


def test_runtime_env_names_are_settings_or_interpreter_switches():
    from config import ENV_VARS

    env = runtime_stage().env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert env["HOME"] == "/tmp"  # the only writable path under a read-only root filesystem
    assert int(env["PORT"]) == Settings().port
    # The container listens on every interface (else -p and Services cannot reach it); outside one
    # the default stays loopback only.
    assert env["HOST"] == "0.0.0.0" and Settings().host == "127.0.0.1"
    not_ours = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PATH", "LANG", "HOME", "TF_CPP_MIN_LOG_LEVEL"}
    assert set(env) - not_ours <= set(ENV_VARS)


def test_runtime_runs_gunicorn_as_a_numeric_non_root_user():
    runtime = runtime_stage()
    users = runtime.args("USER")
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0
    assert runtime.exec_form("ENTRYPOINT") == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert runtime.words("EXPOSE") == [[str(Settings().port)]]


def test_healthcheck_asks_readiness_without_curl():
    check = runtime_stage().args("HEALTHCHECK")[-1]
    assert "/health/ready" in check and "urllib" in check and "curl" not in check


def test_oci_labels():
    labels = " ".join(runtime_stage().args("LABEL"))
    for key in ("title", "description", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels


def _project_code() -> set[str]:
    """Top-level modules and packages of the service (everything but tests)."""
    modules = {p.name for p in ROOT.glob("*.py")}
    packages = {p.parent.name + "/" for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests"}
    return modules | packages


def test_runtime_copies_all_service_code_and_the_verified_model():
    copies = [words for words in runtime_stage().words("COPY") if not words[0].startswith("--from")]
    sources = {src for words in copies for src in words[:-1]}
    assert _project_code() <= sources | {"assets/"}, "code missing from the image"
    # What the service reads from assets/ (core/assets.py); the calibration photos only the model stage reads.
    assert {"assets/catalog.json", "assets/labels/"} <= sources
    assert not any(src.startswith("assets/calibration") or src == "assets/" for src in sources)
    assert "assets/" in {src for words in stage("model").words("COPY") for src in words[:-1]}
    from_model = [w for w in runtime_stage().words("COPY") if w[0] == "--from=model"]
    assert ["--from=model", "/out/models/", "assets/models/"] in from_model


def _ignored(path: str, patterns: list[str]) -> bool:
    path = path.rstrip("/")
    return any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in patterns)


def test_dockerignore_keeps_local_state_out_but_not_the_code():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for local in (".git", ".venv", "assets/models/x", "tests", "k8s", "foo/__pycache__"):
        assert _ignored(local, patterns), local
    for each in stages():
        for words in each.words("COPY"):
            if words[0].startswith("--from"):
                continue
            for src in words[:-1]:
                assert not _ignored(src, patterns), f"{src} is COPYed but .dockerignore excludes it"


def test_backend_build_arg_reaches_the_service_and_tflite_images_drop_tensorflow():
    """BACKEND=tflite*: converted once in the model stage, runtime venv without TensorFlow
    (`../shared/tools/container-smoke` builds the default, int8; BUILD_ARGS="--build-arg BACKEND=tf"
    the TensorFlow one). The image defaults to int8, a valid BACKEND that the service's own
    default (``auto``, for a model dir that may have no int8 file) is not."""
    model, deps, runtime = stage("model"), stage("deps"), runtime_stage()
    defaults = {s.build_args()["BACKEND"] for s in (model, deps, runtime)}
    assert defaults == {"tflite-int8"}
    assert Settings(backend="tflite-int8").backend == "tflite-int8"
    assert runtime.env()["BACKEND"] == "${BACKEND}"
    fetch = next(rest for rest in model.args("RUN") if "python -m core fetch" in rest)
    assert "python -m core optimize" in fetch and "--int8" in fetch
    # The files the image's backend never reads are pruned, on the record (core/serving/prune.py).
    assert 'python -m core prune "$installed" --backend "$BACKEND"' in fetch
    assert 'python -m core prune "$installed" --backend tflite-int8 --backend tflite' in fetch
    venv = " ".join(deps.args("RUN"))
    assert "--require-hashes -r /src/requirements-tflite.lock" in venv
    assert "--require-hashes -r /src/requirements.lock" in venv
    tflite_lock = pinned(ROOT / "requirements-tflite.lock")
    assert "ai-edge-litert" in tflite_lock and not any(name.startswith("tensorflow") for name in tflite_lock)


def pinned(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a requirements or lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith(("#", "--")):
            name, version = line.split(";")[0].split("==")
            pins[name.strip().lower()] = version.strip(" \\")
    return pins


def test_the_locks_pin_what_requirements_txt_asks_for():
    """A changed requirements.txt needs `make lock`: the image installs the locks, not requirements.txt."""
    wanted = pinned(ROOT / "requirements.txt")
    full, tflite = pinned(ROOT / "requirements.lock"), pinned(ROOT / "requirements-tflite.lock")
    assert {name: full.get(name) for name in wanted} == wanted
    without_tf = {name: version for name, version in wanted.items() if not name.startswith("tensorflow")}
    assert {name: tflite.get(name) for name in without_tf} == without_tf


def test_the_model_is_fetched_and_converted_on_the_build_machine_not_under_emulation():
    """One conversion for every architecture: the arm64 image carries the bytes the amd64 one was
    smoke-tested with, and TensorFlow never runs under QEMU."""
    text = DOCKERFILE.read_text()
    assert "FROM --platform=$BUILDPLATFORM python:3.11-slim AS model" in text
    copies = runtime_stage().args("COPY")
    assert "--from=model /out/models/ assets/models/" in copies and "--from=deps /opt/venv /opt/venv" in copies
