"""Streaming download of one URL (http, https or file) into a local file.

Bytes are hashed while they are written, so the archive is read once. Transient
failures (connection errors, timeouts, HTTP 5xx, a body shorter than its
Content-Length) are retried with exponential backoff; a 4xx, a missing local file or
an oversized body are not, because retrying cannot fix them.
"""

from __future__ import annotations

import base64
import http.client
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, TextIO
from urllib.parse import unquote, urlsplit, urlunsplit

from core.artifacts.integrity import ArtifactError, MultiHash

log = logging.getLogger(__name__)

SCHEMES = ("http", "https", "file")
_CHUNK = 256 * 1024
_USER_AGENT = "object-detector-model-fetcher/1"


class UnsupportedURLError(ArtifactError):
    """The URL's scheme or form is one the fetcher refuses to use."""


class DownloadError(ArtifactError):
    """The bytes could not be obtained."""


class NetworkError(DownloadError):
    """The server could not be reached at all (refused, unknown host, timeout), even after retries."""


class _Transient(Exception):
    """A failure worth another attempt; ``network`` when the server could not be reached at all."""

    def __init__(self, message: str, network: bool = False) -> None:
        super().__init__(message)
        self.network = network


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in total, sleeping base_delay * 2**(n-1) between them."""

    attempts: int = 4
    base_delay: float = 1.0
    #: Seconds any single socket operation may block.
    timeout: float = 60.0


def check_url(url: str) -> None:
    """Refuse anything but http(s) and local file URLs before any work is done."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UnsupportedURLError(
            f"unsupported URL scheme {parts.scheme!r} in {redact(url)}; use one of {', '.join(SCHEMES)}"
        )
    if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
        raise UnsupportedURLError(f"file URL must be local (file:///path), got {redact(url)}")
    if parts.scheme != "file" and not parts.hostname:
        raise UnsupportedURLError(f"URL has no host: {redact(url)}")


def redact(url: str) -> str:
    """``url`` without user:password, for logs, errors and manifests."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def public_url(url: str) -> str:
    """``url`` as a client of the service may see it (``/model/metadata``'s ``source``): a ``file://``
    URL only by its file name (``file: model.tar.gz``: the server's paths stay private), any other
    without user:password and without its query (signed URLs carry tokens there)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        return f"file: {PurePosixPath(unquote(parts.path)).name}"
    return urlunsplit(urlsplit(redact(url))._replace(query="", fragment=""))


def download(
    url: str,
    dest: Path,
    *,
    algorithms: Iterable[str] = (),
    retry: RetryPolicy = RetryPolicy(),
    max_bytes: int,
    progress: TextIO | None = sys.stderr,
) -> dict[str, str]:
    """Write the body of ``url`` to ``dest`` and return its digests (``algorithms`` + sha256).

    Raises :class:`DownloadError` once the retries are spent or on a permanent failure.
    """
    check_url(url)
    algorithms = tuple(algorithms)
    # Hand-written, not urllib3's Retry: that would add urllib3 to the TensorFlow-free image for a
    # ten-line loop, and Retry cannot retry a body cut short mid-stream or one that fails its length.
    attempt = 1
    while True:
        log.info("downloading %s (attempt %d/%d)", redact(url), attempt, retry.attempts)
        try:
            return _fetch_once(url, dest, algorithms, retry.timeout, max_bytes, progress)
        except _Transient as exc:
            if attempt >= retry.attempts:
                failed = NetworkError if exc.network else DownloadError
                raise failed(f"download of {redact(url)} failed after {attempt} attempts: {exc}") from None
            delay = retry.base_delay * 2 ** (attempt - 1)
            log.warning("download of %s failed: %s; retrying in %.2fs", redact(url), exc, delay)
            time.sleep(delay)
            attempt += 1


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect to ftp://; only http(s) targets are allowed."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise DownloadError(f"refusing redirect from {redact(req.full_url)} to {redact(newurl)}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _open(url: str, timeout: float) -> tuple[BinaryIO, int | None]:
    """Open ``url``; return the stream and its announced length (None if unknown)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.request.url2pathname(parts.path))
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise DownloadError(f"cannot read {path}: {exc.strerror}") from None
        return f, os.fstat(f.fileno()).st_size
    request = urllib.request.Request(redact(url), headers={"User-Agent": _USER_AGENT})  # noqa: S310 - http(s) only: check_url ran, file: returned above
    if parts.username is not None:
        # urllib cannot take user:password from the URL; unredirected, it never reaches another host.
        userpass = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(userpass).decode())
    try:
        resp = _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{redact(url)}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _Transient(f"cannot connect: {exc.reason}", network=True) from None
    except OSError as exc:  # a timeout or reset before any answer
        raise _Transient(f"{type(exc).__name__}: {exc}", network=True) from None
    except http.client.HTTPException as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    length = resp.headers.get("Content-Length")
    return resp, int(length) if length and length.isdigit() else None


def _fetch_once(
    url: str, dest: Path, algorithms: tuple[str, ...], timeout: float, max_bytes: int, progress: TextIO | None
) -> dict[str, str]:
    src, total = _open(url, timeout)
    if total is not None and total > max_bytes:
        src.close()
        raise DownloadError(f"{redact(url)} is {total} bytes, over the {max_bytes}-byte limit")
    digests = MultiHash(algorithms)
    meter = _Progress(Path(urlsplit(url).path).name or url, total, progress)
    done = 0
    with src, open(dest, "wb") as out:
        while True:
            try:
                chunk = src.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"{type(exc).__name__} after {done} bytes: {exc}") from None
            if not chunk:
                break
            done += len(chunk)
            if done > max_bytes:
                raise DownloadError(f"{redact(url)} exceeds the {max_bytes}-byte limit")
            out.write(chunk)
            digests.update(chunk)
            meter.update(done)
    meter.finish(done)
    if total is not None and done != total:
        raise _Transient(f"truncated download: got {done} of {total} bytes")
    return digests.hexdigests()


class _Progress:
    """Download progress on a stream: a live line on a TTY, a few plain lines otherwise.

    Kept rather than tqdm (which the images have, through ai-edge-litert): tqdm redraws with
    carriage returns on every stream, which turns a Docker build log or CI log into one long line;
    here a non-terminal gets one plain line every 10 s.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO | None) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.tty = bool(stream and stream.isatty())
        self.interval = 0.2 if self.tty else 10.0
        self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.stream and now - self.last >= self.interval:
            self.last = now
            self._write(done, final=False)

    def finish(self, done: int) -> None:
        if self.stream:
            self._write(done, final=True)

    def _write(self, done: int, final: bool) -> None:
        if self.stream is None:  # not an assert: those vanish under python -O
            return
        if self.total:
            text = f"{self.label}: {100 * done // self.total:3d}% {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            text = f"{self.label}: {done:,} bytes"
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + text + end)
        self.stream.flush()
