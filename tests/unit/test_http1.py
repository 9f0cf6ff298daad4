"""The request framing the worker's buffering front does on its own (api/server/http1.py)."""

from __future__ import annotations

import pytest

from api.server.http1 import Reject, RequestBuffer

LIMIT = 1000


def scanned(*pieces: bytes, max_body: int = LIMIT) -> RequestBuffer:
    buffer = RequestBuffer(4096, max_body)
    for piece in pieces:
        buffer.feed(piece)
        buffer.scan()
    return buffer


def rejected(*pieces: bytes) -> Reject:
    with pytest.raises(Reject) as info:
        scanned(*pieces)
    return info.value


def test_a_request_is_complete_once_its_content_length_has_arrived() -> None:
    head = b"POST /model/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
    partial = scanned(head, b"abc")
    assert partial.head is not None and partial.head.path == "/model/predict" and not partial.complete
    assert partial.body_received == 3
    done = scanned(head, b"abc", b"de")
    assert done.complete and done.request_bytes() == head + b"abcde"


def test_header_bytes_alone_leave_the_head_unparsed() -> None:
    assert scanned(b"POST /model/predict HTTP/1.1\r\nX-Pad: aaaa").head is None


def test_a_chunked_body_is_complete_at_the_last_chunk_and_keeps_pipelined_bytes() -> None:
    head = b"POST /v2/models/m/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    nxt = b"GET /health/live HTTP/1.1\r\n\r\n"
    buffer = scanned(head, body[:7], body[7:19], body[19:] + nxt)
    assert buffer.complete and buffer.body_size == 5
    assert buffer.end == len(head + body) and buffer.request_bytes() == head + body + nxt


def test_trailer_fields_end_a_chunked_body() -> None:
    assert scanned(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n").complete


@pytest.mark.parametrize("size_line", [b"zz", b"-1", b"", b"1 2", b"0x10"])
def test_a_malformed_chunk_size_is_400(size_line: bytes) -> None:
    exc = rejected(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n")
    assert (exc.status, exc.message) == (400, "malformed chunk size")


def test_chunk_data_must_end_with_crlf() -> None:
    assert rejected(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n").status == 400


def test_bodies_over_the_limit_are_413_before_they_arrive() -> None:
    assert rejected(b"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n").status == 413
    assert rejected(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n").status == 413


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 3\r\nTransfer-Encoding: chunked",  # request smuggling
        b"Content-Length: 3\r\nContent-Length: 4",
        b"Content-Length: -3",
        b"Content-Length: \xc2\xb2",  # latin-1 superscript two is a digit to str.isdigit()
        b" folded: value",
        b"no colon",
    ],
)
def test_ambiguous_framing_is_400(fields: bytes) -> None:
    assert rejected(b"POST / HTTP/1.1\r\n" + fields + b"\r\n\r\nabc").status == 400


def test_unknown_transfer_codings_are_501() -> None:
    assert rejected(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").status == 501


@pytest.mark.parametrize("line", [b"GET /", b"GET / HTTP/2.0", b"G(T / HTTP/1.1", b"GET  / HTTP/1.1"])
def test_a_malformed_request_line_is_400(line: bytes) -> None:
    assert rejected(line + b"\r\n\r\n").status == 400


def test_a_header_block_over_the_limit_is_431_before_it_ends() -> None:
    buffer = RequestBuffer(64, LIMIT)
    buffer.feed(b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 100)
    with pytest.raises(Reject) as info:
        buffer.scan()
    assert info.value.status == 431


def test_expect_continue_is_hidden_from_gunicorn_once_answered() -> None:
    buffer = scanned(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert buffer.head is not None and buffer.head.expect_continue and not buffer.complete
    buffer.drop_expect()
    buffer.feed(b"ok")
    buffer.scan()
    assert buffer.request_bytes() == b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"


def test_http10_ignores_expect_continue() -> None:
    head = scanned(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n").head
    assert head is not None and not head.expect_continue
