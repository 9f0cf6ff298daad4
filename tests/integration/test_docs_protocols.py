"""docs/protocols.md's Python (tritonclient) example still runs against the real model over real
HTTP and prints what the page shows (its console examples are run by test_doc_examples.py)."""

from __future__ import annotations

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
