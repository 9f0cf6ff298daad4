"""Schema fuzzing: schemathesis generates requests from ``/swagger.json`` against a real HTTP server.

It covers every documented protocol: MAX's ``/model``, DeepStack's ``/v1/vision/detection`` and
Open Inference Protocol v2 under ``/v2`` (random model names, tensors, shapes and parameters).

Every response must conform to the documented schema (status code, content type, headers, body),
none may be a 5xx, and schema-violating requests must be refused. One check is left out:
``positive_data_acceptance`` expects every schema-valid request to succeed, but a Swagger ``file``
cannot say "a decodable image", so random bytes rightly get a 400 (which is documented). And
``schemathesis_hooks.py`` drops one kind of generated case that is not what it claims to be.

The CLI runs in a subprocess (its pytest plugin does not support this pytest); the server runs in
this process, so its request log shows what schemathesis really sent: multipart uploads included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import pytest

from tests.conftest import ROOT
from tests.support.server import serve_app

pytestmark = [pytest.mark.slow]

MAX_EXAMPLES = 50
KEY = "fuzz-key-0123456789abcdef"


@pytest.mark.parametrize("api_key", [None, KEY], ids=["open", "api-key"])
def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    settings, detector, request_records, tmp_path, api_key
) -> None:
    from app import create_app

    app = create_app(replace(settings, api_key=api_key), model=detector)
    auth = ["--header", f"X-API-Key: {KEY}"] if api_key else []
    with serve_app(app) as url:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{url}/swagger.json",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "20261121",
                "--workers",
                "1",
                "--request-timeout",
                "60",
                "--no-color",
                *auth,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks"},
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert all(r.fields["status"] < 500 for r in request_records)
    predict_log = [
        r.fields for r in request_records if r.fields["path"] == "/model/predict" and r.fields["method"] == "POST"
    ]
    uploads = [f for f in predict_log if f.get("image_bytes", 0) > 0]
    assert uploads, "schemathesis never sent an image file"
    assert any(f["status"] == 200 for f in uploads), "no generated upload was a decodable image"
    if api_key:
        assert any(f["status"] == 401 for f in predict_log), "the run never tried without the key"
    # The other protocols were fuzzed too, and each refused what it could not use with a 4xx.
    paths = {(r.fields["method"], r.fields["path"]) for r in request_records}
    assert ("POST", "/v1/vision/detection") in paths
    deepstack = [r.fields for r in request_records if r.fields["path"] == "/v1/vision/detection"]
    assert any(f.get("image_bytes", 0) > 0 for f in deepstack), "schemathesis never sent DeepStack an image"
    v2_infer = [r.fields for r in request_records if r.fields["path"].startswith("/v2/models/")]
    assert any(f["method"] == "POST" and f["path"].endswith("/infer") for f in v2_infer)
    assert any(f["status"] == 404 for f in v2_infer), "random model names must be 404s"
    assert ("GET", "/v2") in paths and ("GET", "/v2/health/ready") in paths
