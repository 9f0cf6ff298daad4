"""One HTTP/1.x request arriving on a connection, collected until it is complete.

Pure bookkeeping over bytes, no sockets: :class:`RequestBuffer` is fed what ``recv`` returns and
says when the header block has ended and when the whole request (``Content-Length`` body or
chunked body, validated chunk by chunk) is in. The worker (``api.server.worker``) decides what to do
at each step; gunicorn's own parser still parses the complete request afterwards, so this only
has to find where a request ends and refuse what it cannot frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http import HTTPStatus

#: A chunk-size line: hex digits, optionally followed by chunk extensions (";name=value").
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,16})[ \t]*(;.*)?$")
_DIGITS = re.compile(r"^[0-9]{1,18}$")
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Longest chunk-size line accepted (size plus extensions), like gunicorn's own limit.
MAX_CHUNK_LINE = 1024


class Reject(Exception):
    """The request cannot be served: answer ``status`` with ``message`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Head:
    """The parts of a request's header block the front needs; gunicorn parses the rest."""

    method: str
    target: str
    version: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, value)
    content_length: int | None = None
    chunked: bool = False
    expect_continue: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def get(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None


class RequestBuffer:
    """Collects one request: ``feed()`` bytes, then ``scan()``; :attr:`head` is set once the header
    block has ended, :attr:`complete` once the body has too. ``scan()`` raises :class:`Reject`."""

    def __init__(self, max_head: int, max_body: int, initial: bytes = b"") -> None:
        self.max_head = max_head
        self.max_body = max_body
        self.data = bytearray(initial)
        self.head: Head | None = None
        self.head_end = 0  # offset just past the blank line that ends the header block
        self.end: int | None = None  # offset just past the request, once complete
        self.body_size = 0  # payload bytes seen so far (chunked: without the framing)
        self._chunk_pos = 0  # chunked: where the next chunk-size line starts
        self._drop_expect = False

    def feed(self, data: bytes) -> None:
        self.data += data

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def body_received(self) -> int:
        """Body bytes on hand (with chunk framing): what the minimum body rate is measured on."""
        return max(0, len(self.data) - self.head_end) if self.head else 0

    @property
    def started(self) -> bool:
        return bool(self.data)

    def scan(self) -> None:
        if self.end is not None:
            return
        if self.head is None:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                if len(self.data) > self.max_head:
                    raise Reject(431, f"request header block is larger than {self.max_head} bytes")
                return
            if end + 4 > self.max_head:
                raise Reject(431, f"request header block is larger than {self.max_head} bytes")
            self.head = parse_head(bytes(self.data[:end]), self.max_body)
            self.head_end = end + 4
            self._chunk_pos = self.head_end
        head = self.head
        if head.chunked:
            self._scan_chunks()
        elif len(self.data) >= self.head_end + (head.content_length or 0):
            self.end = self.head_end + (head.content_length or 0)
            self.body_size = head.content_length or 0

    def _scan_chunks(self) -> None:
        data, pos = self.data, self._chunk_pos
        while True:
            eol = data.find(b"\r\n", pos, pos + MAX_CHUNK_LINE + 2)
            if eol < 0:
                if len(data) - pos > MAX_CHUNK_LINE:
                    raise Reject(400, "malformed chunk size line")
                break
            match = _CHUNK_SIZE.match(bytes(data[pos:eol]))
            if match is None:
                raise Reject(400, "malformed chunk size")
            size = int(match.group(1), 16)
            if size == 0:  # last chunk, then optional trailer fields and a blank line
                if data[eol + 2 : eol + 4] == b"\r\n":
                    self.end = eol + 4
                else:
                    trailer_end = data.find(b"\r\n\r\n", eol + 2)
                    if trailer_end < 0:
                        if len(data) - eol > self.max_head:
                            raise Reject(431, "request trailer fields are too large")
                        break
                    self.end = trailer_end + 4
                break
            if self.body_size + size > self.max_body:
                raise Reject(413, f"request body is larger than the limit of {self.max_body} bytes")
            if len(data) < eol + 2 + size + 2:
                break
            if data[eol + 2 + size : eol + 4 + size] != b"\r\n":
                raise Reject(400, "chunk data does not end with CRLF")
            self.body_size += size
            pos = eol + 4 + size
        self._chunk_pos = pos

    def drop_expect(self) -> None:
        """The front answered ``Expect: 100-continue`` itself: hide the field from gunicorn, which
        would send a second ``100 Continue``."""
        self._drop_expect = True

    def request_bytes(self) -> bytes:
        """The complete request as gunicorn should parse it, followed by any pipelined bytes."""
        if self.end is None or self.head is None:
            raise RuntimeError("the request is not complete yet")
        if not self._drop_expect:
            return bytes(self.data)
        lines = bytes(self.data[: self.head_end - 4]).split(b"\r\n")
        kept = [lines[0]] + [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() != b"expect"]
        return b"\r\n".join(kept) + b"\r\n\r\n" + bytes(self.data[self.head_end :])


def parse_head(block: bytes, max_body: int) -> Head:
    """The request line and the framing fields of a header block (without its final CRLF CRLF)."""
    lines = block.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1] or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise Reject(400, "malformed request line")
    head = Head(parts[0].decode("ascii"), parts[1].decode("latin-1"), parts[2].decode("ascii"))
    lengths: set[str] = set()
    codings: list[str] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):  # also refuses obsolete line folding (a leading space)
            raise Reject(400, "malformed header field")
        key, text = name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")
        head.fields.append((key, text))
        if key == "content-length":
            lengths.update(item.strip() for item in text.split(","))
        elif key == "transfer-encoding":
            codings += [item.strip().lower() for item in text.split(",") if item.strip()]
        elif key == "expect" and text.lower() == "100-continue" and head.version == "HTTP/1.1":
            head.expect_continue = True
    if codings:
        if lengths:
            raise Reject(400, "a request cannot have both Content-Length and Transfer-Encoding")
        if codings != ["chunked"] or head.version != "HTTP/1.1":
            raise Reject(501, "the only accepted Transfer-Encoding is chunked (HTTP/1.1)")
        head.chunked = True
    elif lengths:
        if len(lengths) != 1 or not _DIGITS.match(next(iter(lengths))):
            raise Reject(400, "invalid Content-Length")
        head.content_length = int(next(iter(lengths)))
        if head.content_length > max_body:
            raise Reject(413, f"request body is larger than the limit of {max_body} bytes")
    return head


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
