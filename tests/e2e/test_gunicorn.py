"""The real gunicorn server, started from gunicorn.conf.py on a free port, over real HTTP."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import image_bytes, model_pin
from tests.support.server import GunicornServer, model_env

pytestmark = [pytest.mark.slow]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def post_image(url: str, data: bytes, threshold: str | None = None) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    ]
    if threshold is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="threshold"\r\n\r\n{threshold}\r\n'.encode()
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def announce_oversized_body(base: str, size: int) -> tuple[int, dict]:
    """Declare a body over the limit and wait, as a client using ``Expect: 100-continue`` does:
    the server must answer 413 from the headers alone, without reading the body."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/model/predict")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    response = conn.getresponse()
    try:
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(ssdlite_dir: Path, tmp_path_factory):
    env = {
        **model_env(ssdlite_dir.parent.parent, *model_pin()),
        "WORKERS": "1",
        "THREADS": "2",
        "MAX_UPLOAD_BYTES": "1048576",
    }
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with GunicornServer(env, log) as gunicorn:
        gunicorn.wait_ready(timeout=120)
        yield gunicorn.url, log


def test_real_server_serves_max_api(server):
    base, _ = server
    status, body = get(base + "/model/metadata")
    assert status == 200 and body["type"] == "Object Detection"
    status, body = post_image(base + "/model/predict", image_bytes("baby-bear.jpg"))
    assert status == 200
    assert {"1", "88"} <= {p["label_id"] for p in body["predictions"]}


def test_real_server_errors_are_json_and_it_keeps_serving(server):
    base, log = server
    assert post_image(base + "/model/predict", b"not an image")[0] == 400
    assert post_image(base + "/model/predict", image_bytes("dog.jpg"), threshold="abc")[0] == 400
    status, body = announce_oversized_body(base, 2 * 1024 * 1024)
    assert status == 413 and body["status"] == "error"
    status, body = post_image(base + "/model/predict", image_bytes("giraffe.jpg"), threshold="0.5")
    assert status == 200 and "giraffe" in {p["label"] for p in body["predictions"]}
    assert '"method":"POST","path":"/model/predict","status":200' in log.read_text()
