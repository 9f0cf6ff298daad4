"""Schema fuzzing: schemathesis generates requests from ``/swagger.json`` against a real HTTP server.

Every response must conform to the documented schema (status code, content type, body) and none
may be a 5xx. The multipart upload of ``/model/predict`` is generated too: the test checks that the
request really carried a file. Bounded to 25 examples per operation to stay well under two minutes.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.server import serve_app

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def api_schema(settings, detector):
    from app import create_app

    with serve_app(create_app(settings, model=detector)) as url:
        yield schemathesis.openapi.from_url(f"{url}/swagger.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_its_schema(case) -> None:
    response = case.call_and_validate(timeout=60)
    if case.operation.path == "/model/predict" and isinstance(case.body, dict) and "image" in case.body:
        sent = response.request.body if isinstance(response.request.body, bytes) else b""
        assert response.request.headers["Content-Type"].startswith("multipart/form-data")
        assert b'name="image"; filename=' in sent
