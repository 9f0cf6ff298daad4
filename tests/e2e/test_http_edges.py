"""HTTP edges against the real gunicorn, over raw sockets where a client library would smooth
them over: broken chunked framing, ``Expect: 100-continue`` before a refusal, forms made of
thousands of fields or one huge field, and redirects on paths with doubled slashes."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import image_bytes, model_pin
from tests.support.server import HOST, GunicornServer, model_env

pytestmark = [pytest.mark.slow]

KEY = "edge-test-key-0123456789"


@pytest.fixture(scope="module")
def server(ssdlite_dir: Path, tmp_path_factory):
    env = {**model_env(ssdlite_dir.parent.parent, *model_pin()), "WORKERS": "1", "THREADS": "2", "API_KEY": KEY}
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with GunicornServer(env, log) as gunicorn:
        gunicorn.wait_ready(timeout=120)
        yield gunicorn


def exchange(server: GunicornServer, head: bytes, body: bytes | None = None, timeout: float = 5) -> bytes:
    """Send ``head``; send ``body`` only once the server answers ``100 Continue``. Returns all
    bytes read until the server closes (or ``timeout`` passes: ``<open>`` is appended)."""
    with socket.create_connection((HOST, server.port), timeout=timeout) as sock:
        sock.sendall(head)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if body is not None and received.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
                    sock.sendall(body)
                    body = None
        except TimeoutError:
            received += b"<open>"
    return received


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"^HTTP/1\.1 (\d{3}) ", raw, re.MULTILINE)]


def request_log_lines(server: GunicornServer, since: int) -> list[str]:
    return [line for line in server.log_text()[since:].splitlines() if line.strip()]


def multipart(image: bytes, **fields: str) -> tuple[bytes, bytes]:
    boundary = b"edgeboundary"
    parts = [
        b'--%s\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n\r\n%s\r\n' % (boundary, image)
    ]
    parts += [
        b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, k.encode(), v.encode())
        for k, v in fields.items()
    ]
    return boundary, b"".join(parts) + b"--%s--\r\n" % boundary


def test_malformed_chunk_size_is_a_400_and_one_log_line(server) -> None:
    since = len(server.log_text())
    raw = exchange(
        server,
        b"POST /model/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    )
    assert statuses(raw) == [400], raw[:300]
    assert b"malformed chunk size" in raw and b"Connection: close" in raw
    time.sleep(0.5)
    lines = request_log_lines(server, since)
    assert len(lines) == 1 and "400 malformed chunk size" in lines[0], lines  # the worker's one line
    assert "Traceback" not in server.log_text()[since:]


def test_expect_100_continue_without_the_key_gets_401_without_continue(server) -> None:
    raw = exchange(
        server,
        b"POST /model/predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n",
        body=b"x" * 5000,
    )
    assert statuses(raw) == [401], raw[:300]
    assert b"Connection: close" in raw and not raw.endswith(b"<open>")


def test_expect_100_continue_over_the_size_limit_gets_413_without_continue(server) -> None:
    raw = exchange(
        server,
        b"POST /model/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() + b"\r\nExpect: 100-continue\r\n"
        b"Content-Length: 999999999\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n",
    )
    assert statuses(raw) == [413], raw[:300]


def test_expect_100_continue_with_the_key_gets_continue_then_the_answer(server) -> None:
    boundary, body = multipart(image_bytes("dog.jpg"), threshold="0.5")
    raw = exchange(
        server,
        b"POST /model/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nExpect: 100-continue\r\nConnection: close\r\n"
        b"Content-Length: %d\r\nContent-Type: multipart/form-data; boundary=%s\r\n\r\n"
        % (KEY.encode(), len(body), boundary),
        body=body,
        timeout=60,
    )
    assert statuses(raw) == [100, 200], raw[:300]
    assert b'"dog"' in raw


@pytest.mark.parametrize(
    "fields, message",
    [
        ({f"f{i}": "1" for i in range(10_000)}, "the form has more than 16 parts"),
        ({"threshold": "0" * 2_000_000}, "a form field other than the image is longer than 262144 bytes"),
    ],
    ids=["10000-tiny-fields", "one-2MB-field"],
)
def test_form_limits_name_the_real_reason(server, fields, message) -> None:
    files = {"image": ("dog.jpg", image_bytes("dog.jpg")), **{k: (None, v) for k, v in fields.items()}}
    response = requests.post(f"{server.url}/model/predict", headers={"X-API-Key": KEY}, files=files, timeout=60)
    assert response.status_code == 413
    assert response.json()["message"].startswith(message)


@pytest.mark.parametrize("path", ["/model//labels", "//health//live", "/app//"])
def test_doubled_slashes_never_redirect_to_the_clients_host(server, path) -> None:
    response = requests.get(server.url + path, headers={"Host": "evil.example"}, allow_redirects=False, timeout=10)
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_wrong_method_on_a_doubled_slash_path_is_not_a_500(server) -> None:
    response = requests.get(server.url + "/model//predict", allow_redirects=False, timeout=10)
    assert response.status_code == 404


def test_the_app_redirect_is_relative(server) -> None:
    response = requests.get(server.url + "/app/", headers={"Host": "evil.example"}, allow_redirects=False, timeout=10)
    assert response.status_code == 308 and response.headers["Location"] == "../app"
