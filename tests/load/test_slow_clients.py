"""The gunicorn worker's front (api/server/worker.py) against the real server and model: slow clients
cost no thread and are closed with 408 at their deadline, overload is shed with 503 while probes
answer, and the HTTP/1.1 features the front handles itself (100-continue, keep-alive, pipelining,
chunked bodies) still work. No assertion on latency: those are measured by benchmarks/abuse.py."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import image_bytes
from tests.support.abuse import (
    HOST,
    ClosedLoop,
    Tricklers,
    multipart,
    once,
    post_bytes,
    read_response,
)
from tests.support.server import GunicornServer

pytestmark = [pytest.mark.slow, pytest.mark.load]

DEADLINE = 2  # HEADER_TIMEOUT_SECONDS and BODY_TIMEOUT_SECONDS in these tests
API_KEY = "slow-client-test-key-0123456789"
KEY = {"X-API-Key": API_KEY}


@pytest.fixture(scope="module")
def server(gunicorn_env, tmp_path_factory) -> Iterator[GunicornServer]:
    """One worker, four threads, short deadlines, an API key, and a small queue."""
    env = {
        **gunicorn_env,
        "WORKERS": "1",
        "THREADS": "4",
        "HEADER_TIMEOUT_SECONDS": str(DEADLINE),
        "BODY_TIMEOUT_SECONDS": str(DEADLINE),
        "BODY_MIN_RATE_BYTES": "1024",
        "MAX_QUEUE": "4",
        "MAX_QUEUE_WAIT_SECONDS": "2",
        "RETRY_AFTER_SECONDS": "3",
        "API_KEY": API_KEY,
    }
    with GunicornServer(env, tmp_path_factory.mktemp("slow") / "gunicorn.log") as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def photo() -> tuple[bytes, str]:
    return multipart(image_bytes("dog.jpg"), filename="dog.jpg")


def predict_ok(url: str, body: bytes, content_type: str) -> bool:
    response = requests.post(
        f"{url}/model/predict", data=body, headers={"Content-Type": content_type, **KEY}, timeout=60
    )
    return response.status_code == 200 and response.json()["status"] == "ok" and bool(response.json()["predictions"])


def test_tricklers_are_closed_with_408_and_never_starve_a_normal_client(server, photo) -> None:
    body, content_type = photo
    pids = server.worker_pids()
    with Tricklers(server.port, header=200, body=200, max_seconds=40) as tricklers:
        server.wait_until(lambda: tricklers.max_open >= 400, timeout=30, what="400 slow connections")
        # A normal client while all 400 are connected: 4 threads would be taken by 4 of them with gthread.
        outcomes = [predict_ok(server.url, body, content_type) for _ in range(10)]
        results = tricklers.join()

    assert all(outcomes), outcomes
    assert len(results) == 400
    by_mode = {mode: [r for r in results if r.mode == mode] for mode in ("header", "body")}
    for mode, group in by_mode.items():
        assert len(group) == 200
        assert all(r.status == 408 for r in group), {mode: sorted({(r.status, r.error) for r in group}, key=str)}
        # Closed by the server, and never before its deadline (the only timing asserted: a lower bound).
        assert all(r.closed_after is not None and r.closed_after >= DEADLINE - 0.05 for r in group), group
    assert server.worker_pids() == pids
    metrics = requests.get(f"{server.url}/metrics", timeout=10).text
    closes = dict(re.findall(r'objdet_http_deadline_closes_total\{phase="(\w+)"\} (\S+)', metrics))
    assert float(closes["header"]) >= 200 and float(closes["body"]) >= 200, closes


def test_overload_is_shed_with_503_and_retry_after_while_probes_answer(server, photo) -> None:
    body, content_type = photo
    extra = f"X-API-Key: {API_KEY}\r\n"
    deepstack_body, deepstack_type = multipart(image_bytes("dog.jpg"))
    requests_ = [
        post_bytes("/model/predict", body, content_type, extra),
        post_bytes("/v1/vision/detection", deepstack_body, deepstack_type, extra),
    ]
    pids = server.worker_pids()
    probes: list[int | str] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            outcome = once(
                server.port, f"GET /health/ready HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode(), 10
            )
            probes.append(outcome.status or str(outcome.error))
            time.sleep(0.2)

    with ClosedLoop(server.port, requests_, clients=64, max_seconds=120) as load:
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        server.wait_until(
            lambda: (
                sum(o.status == 503 for o in load.results()) >= 50
                and sum(o.status == 200 for o in load.results()) >= 20
            ),
            timeout=90,
            what="both served and shed requests",
        )
        outcomes = load.stop()
        stop.set()
        prober.join(15)

    statuses = {o.status for o in outcomes}
    errors = [o.error for o in outcomes if o.status is None]
    print(
        f"\n{len(outcomes)} requests: {sorted((s, sum(o.status == s for o in outcomes)) for s in statuses if s)}; "
        f"errors {errors[:5]}; probes {sorted(set(probes), key=str)} x{len(probes)}"
    )
    assert statuses <= {200, 503, None}, statuses
    assert not errors, errors[:5]
    shed = [o for o in outcomes if o.status == 503]
    assert shed and all(o.retry_after == "3" for o in shed)
    shapes = {frozenset(json.loads(o.body)) for o in shed}  # each protocol's error body (api/errors.py)
    assert shapes <= {frozenset({"status", "message"}), frozenset({"success", "error", "duration"})}, shapes
    assert probes and all(p == 200 for p in probes), probes  # shedding is not unreadiness
    assert server.worker_pids() == pids
    assert "WORKER TIMEOUT" not in server.log_text()
    metrics = requests.get(f"{server.url}/metrics", timeout=10).text
    shed_counted = sum(float(v) for v in re.findall(r"objdet_http_shed_total\{[^}]*\} (\S+)", metrics))
    assert shed_counted >= len(shed), (shed_counted, len(shed))


def test_expect_100_continue_is_answered_before_the_upload(server, photo) -> None:
    body, content_type = photo
    head = post_bytes("/model/predict", b"", content_type, f"X-API-Key: {API_KEY}\r\nExpect: 100-continue\r\n")
    head = head.replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
    with socket.create_connection((HOST, server.port), timeout=30) as sock, sock.makefile("rb") as stream:
        sock.sendall(head)
        assert read_response(stream).status == 100
        sock.sendall(body)
        response = read_response(stream)
    assert response.status == 200 and response.json()["predictions"]


def test_expect_100_continue_without_the_key_gets_401_and_no_100(server, photo) -> None:
    body, content_type = photo
    head = post_bytes("/v2/models/m/infer", b"", content_type, "Expect: 100-continue\r\n")
    head = head.replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
    with socket.create_connection((HOST, server.port), timeout=30) as sock, sock.makefile("rb") as stream:
        sock.sendall(head)
        response = read_response(stream)
    assert response.status == 401 and "error" in response.json()  # the v2 shape
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server, photo) -> None:
    body, content_type = photo
    predict = post_bytes("/model/predict", body, content_type, f"X-API-Key: {API_KEY}\r\n", close=False)
    get = f"GET /model/metadata HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    live = f"GET /health/live HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((HOST, server.port), timeout=60) as sock, sock.makefile("rb") as stream:
        sock.sendall(get)  # keep-alive: one request, its answer, then the next on the same connection
        assert read_response(stream).status == 200
        sock.sendall(predict)
        assert read_response(stream).json()["predictions"]
        sock.sendall(get + predict + get + live)  # pipelined: four at once
        answers = [read_response(stream) for _ in range(4)]
        assert stream.read() == b""  # closed after the last, as it asked
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert "id" in answers[0].json() and answers[1].json()["predictions"] and answers[3].json() == {"status": "ok"}


def test_a_chunked_upload_is_served(server, photo) -> None:
    body, content_type = photo

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 7000):
            yield body[start : start + 7000]

    response = requests.post(
        f"{server.url}/model/predict", data=chunks(), headers={"Content-Type": content_type, **KEY}, timeout=60
    )
    assert response.status_code == 200 and response.json()["predictions"]


def test_a_malformed_chunk_size_gets_400_json_and_one_log_line(server) -> None:
    marker = "malformed chunk size"
    before = server.log_text().count(marker)
    request = (
        f"POST /model/predict HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
    ).encode()
    outcome = once(server.port, request, 10)
    assert outcome.status == 400
    assert outcome.body == b'{"status": "error", "message": "malformed chunk size"}'
    server.wait_until(lambda: server.log_text().count(marker) == before + 1, timeout=5, what="the log line")


def test_a_declared_body_over_the_limit_gets_413_before_it_is_sent(server) -> None:
    request = f"POST /v1/vision/detection HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {10**9}\r\n\r\n".encode()
    outcome = once(server.port, request, 10)
    assert outcome.status == 413 and b'"success": false' in outcome.body


def test_a_stalled_pipelined_request_after_a_served_one_still_gets_its_deadline(server) -> None:
    """Bytes read ahead behind a served request are buffered like any other request."""
    get = f"GET /health/live HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    with socket.create_connection((HOST, server.port), timeout=30) as sock, sock.makefile("rb") as stream:
        sock.sendall(get + b"POST /model/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert read_response(stream).status == 200
        started = time.monotonic()
        late = read_response(stream)
        assert late.status == 408 and time.monotonic() - started < 30


def test_bytes_still_arriving_beyond_the_budget_get_503(gunicorn_env, tmp_path: Path) -> None:
    """MAX_BUFFERED_BYTES counts what connections have sent and not yet completed, per worker."""
    env = {**gunicorn_env, "WORKERS": "1", "MAX_BUFFERED_BYTES": "300000", "BODY_TIMEOUT_SECONDS": "30"}
    head = f"POST /model/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/jpeg\r\nContent-Length: 500000\r\n\r\n"
    with GunicornServer(env, tmp_path / "gunicorn.log") as server:
        server.wait_ready()
        with socket.create_connection((HOST, server.port), timeout=30) as holder:
            holder.sendall(head.encode() + b"x" * 200_000)  # held: 200 kB of a 500 kB body
            time.sleep(1)  # the loop has read them (nothing to wait on: they are not answered)
            with socket.create_connection((HOST, server.port), timeout=30) as second:
                second.sendall(head.encode() + b"x" * 150_000)
                with second.makefile("rb") as stream:
                    response = read_response(stream)
            assert response.status == 503 and response.headers["retry-after"] == "1"
            assert response.json()["status"] == "error"
            assert requests.get(f"{server.url}/health/ready", timeout=10).status_code == 200
        # The holder's bytes are released when it goes: a full upload fits again.
        body, content_type = multipart(image_bytes("dog.jpg"), filename="dog.jpg")
        assert len(body) < 300_000
        server.wait_until(lambda: predict_ok(server.url, body, content_type), timeout=30, what="an upload to fit")
