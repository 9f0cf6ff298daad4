"""SIGTERM to the gunicorn master while requests are in flight: they all finish, new ones are refused.

The in-flight requests are made deterministic by sending each body in two halves: the first half
before the signal, the second after it, so the worker is provably in the middle of every request.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import image_bytes
from tests.support.server import HOST, GunicornServer

pytestmark = [pytest.mark.slow, pytest.mark.load]

GRACE_SECONDS = 20
IN_FLIGHT = 4


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def start_request(port: int, body: bytes, content_type: str) -> http.client.HTTPConnection:
    """Send the headers and the first half of the body, and leave the request open."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.putrequest("POST", "/model/predict")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    return conn


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # this probe was queued on the listener as it closed: ask again
        return False
    return False


def established_connections(pid: int, port: int) -> int:
    return sum(
        1
        for c in psutil.Process(pid).net_connections("tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
    )


def test_sigterm_lets_in_flight_requests_finish_and_refuses_new_ones(gunicorn_env, tmp_path: Path) -> None:
    body, content_type = multipart("dog.jpg", image_bytes("dog.jpg"))
    env = {**gunicorn_env, "WORKERS": "1", "THREADS": str(IN_FLIGHT), "GRACEFUL_TIMEOUT": str(GRACE_SECONDS)}
    with GunicornServer(env, tmp_path / "gunicorn.log") as server:
        server.wait_ready()
        (worker,) = server.worker_pids()
        conns = [start_request(server.port, body, content_type) for _ in range(IN_FLIGHT)]
        server.wait_until(
            lambda: established_connections(worker, server.port) >= IN_FLIGHT,
            timeout=30,
            what="the worker to hold every request",
        )

        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        server.wait_until(lambda: refuses_connections(server.port), timeout=10, what="new connections to be refused")
        assert server.proc.poll() is None, "the master quit before its requests were answered"

        for conn in conns:  # now finish every request that was in flight when the signal came
            conn.send(body[len(body) // 2 :])
        answers = []
        for conn in conns:
            response = conn.getresponse()
            answers.append((response.status, json.loads(response.read())))
            conn.close()

        code = server.wait_exit(timeout=GRACE_SECONDS + 10)
        exited_after = time.monotonic() - signalled

    assert [status for status, _ in answers] == [200] * IN_FLIGHT, answers
    assert all("dog" in {p["label"] for p in body["predictions"]} for _, body in answers)
    assert code == 0
    assert exited_after < GRACE_SECONDS, f"took {exited_after:.1f} s to exit (grace period {GRACE_SECONDS} s)"
