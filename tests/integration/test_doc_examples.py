"""Every example the docs show runs as shown: each ``$`` line of the console blocks in README.md,
docs/ and samples/README.md, against the real model over HTTP, prints what the page says (numbers
within a small tolerance; ``make docs`` rewrites the pages when the model's answers change), and
the README's picture is what /model/annotate draws now."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.support.doc_examples import (
    MAKE_RUN_BACKEND,
    PICTURES,
    annotated,
    examples,
    mismatch,
    picture_mismatch,
    python_examples,
    run,
    run_python,
    served,
)

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "samples" / "README.md"]
EXAMPLES = [example for page in PAGES for example in examples(page)]


@pytest.fixture(scope="module")
def service():
    """The service as the README's offline `make run` leaves it (model in assets/models/)."""
    with served() as (host, model):
        yield host, model


def test_the_examples_run_against_what_make_run_serves():
    assert f"BACKEND ?= {MAKE_RUN_BACKEND}\n" in (ROOT / "Makefile").read_text()


def test_the_docs_show_examples_of_the_first_request_the_cli_and_every_protocol():
    commands = {
        example.path.name: " ".join(e.command for e in EXAMPLES if e.path == example.path) for example in EXAMPLES
    }
    assert "/model/predict" in commands["README.md"]
    assert "objdet predict" in commands["models.md"]
    for route in ("/v1/vision/detection", "/v2/models/", "/infer"):
        assert route in commands["protocols.md"]
    assert any("tritonclient" in e.command for page in PAGES for e in python_examples(page))


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.path.name}:{e.command.splitlines()[0][:50]}" for e in EXAMPLES])
def test_example_prints_what_the_page_shows(service, example):
    host, model = service
    problem = mismatch(example.documented, run(example.command, host, model))
    assert problem is None, f"{example.path.name}: `{example.command}` {problem}; `make docs` rewrites the page"


@pytest.mark.parametrize("picture, photo, threshold", PICTURES, ids=[p[0].name for p in PICTURES])
def test_picture_is_what_the_service_draws(service, picture, photo, threshold):
    host, _ = service
    assert picture_mismatch(picture, annotated(host, photo, threshold)) is None


PYTHON_EXAMPLES = [example for page in PAGES for example in python_examples(page)]


@pytest.mark.parametrize("example", PYTHON_EXAMPLES, ids=[e.path.name for e in PYTHON_EXAMPLES])
def test_python_example_prints_what_the_page_shows(service, example):
    host, model = service
    assert run_python(example.command, host, model) == example.documented, "`make docs` rewrites the page"
