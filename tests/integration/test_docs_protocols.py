"""docs/protocols.md's examples still run: every ``$`` command of its ``console`` blocks and its
Python (tritonclient) example, against the real model over real HTTP, answer with the fields and
labels the page shows. Numbers that change from run to run (timings, request ids) are not compared."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.server import serve_app

DOC = ROOT / "docs" / "protocols.md"
DOC_HOST = "localhost:5000"
DOC_MODEL = "custom-6165257e5596"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)


def console_examples() -> list[tuple[str, str]]:
    """(command, documented output) for each ``$`` line (backslash continuations joined)."""
    examples: list[tuple[str, str]] = []
    for block in blocks("console"):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            assert lines[i].startswith("$ "), lines[i]
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command = command + "\n" + lines[i]  # bash joins the continuation itself
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            examples.append((command, "\n".join(output).strip()))
    return examples


def structure(value: Any) -> Any:
    """The keys and types of a JSON value (lists by their first element), not its numbers."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [structure(value[0])] if value else []
    return type(value).__name__


def labels(value: Any) -> list[str]:
    """Every detected label in a body, in order (MAX, DeepStack or v2 JSON)."""
    found: list[str] = []
    if isinstance(value, dict):
        if value.get("name") == "detection_labels" and "data" in value:
            return list(value["data"])
        if isinstance(value.get("label"), str):
            found.append(value["label"])
        for item in value.values():
            found += labels(item)
    elif isinstance(value, list):
        for item in value:
            found += labels(item)
    return found


@pytest.fixture(scope="module")
def served(settings, detector):
    from app import create_app

    with serve_app(create_app(settings, model=detector)) as url:
        yield url.removeprefix("http://"), detector.info.id


def localise(text: str, host: str, model: str) -> str:
    return text.replace(DOC_HOST, host).replace(DOC_MODEL, model)


def test_the_page_has_examples_for_every_protocol() -> None:
    commands = " ".join(command for command, _ in console_examples())
    for route in ("/model/predict", "/v1/vision/detection", "/v2", "/infer", "kubectl kustomize k8s/kserve"):
        assert route in commands, route
    assert len(blocks("python")) == 1


@pytest.mark.parametrize("command, documented", console_examples(), ids=lambda v: v.split("\n")[0][:60])
def test_console_example_runs_and_answers_as_documented(served, command, documented) -> None:
    host, model = served
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {localise(command, host, model)}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    output = run.stdout.strip()
    try:
        expected = json.loads(localise(documented, host, model))
    except ValueError:  # not JSON (the kubectl render): line for line
        assert output == documented
        return
    actual = json.loads(output)
    assert structure(actual) == structure(expected)
    assert labels(actual) == labels(expected)


def test_tritonclient_example_runs_and_prints_what_is_documented(served) -> None:
    host, model = served
    (code,) = blocks("python")
    (documented,) = blocks("text")
    run = subprocess.run(
        [sys.executable, "-c", localise(code, host, model)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    got, want = run.stdout.strip().splitlines(), documented.strip().splitlines()
    assert got[:2] == want[:2]  # readiness, server metadata
    assert [line.split()[0] for line in got[2:]] == [line.split()[0] for line in want[2:]]  # the labels
