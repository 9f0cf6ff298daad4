"""Downloading: retries, refusals, redirects and credentials, against a loopback HTTP server."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from core.artifacts.download import DownloadError, UnsupportedURLError, redact
from core.artifacts.install import Limits
from core.artifacts.manifest import read_manifest
from tests.support.artifacts import (
    FAST,
    SMALL,
    assert_nothing_installed,
    custom,
    fetch,
    sha256,
)
from tests.support.httpserver import Route


def test_truncated_download_fails_after_the_retries_and_installs_nothing(tmp_path, server):
    url = server.add("/m.tar.gz", Route(SMALL, truncate_first=99))
    with pytest.raises(
        DownloadError,
        match=rf"failed after 3 attempts: truncated download: got {len(SMALL) // 2} "
        rf"of {len(SMALL)} bytes",
    ):
        fetch(custom(tmp_path, url, sha256(SMALL)))
    assert server.hits["/m.tar.gz"] == 3
    assert_nothing_installed(tmp_path)


@pytest.mark.parametrize(
    "route",
    [Route(SMALL, truncate_first=1), Route(SMALL, fail_first=1), Route(SMALL, stall_first=1, stall=1.0)],
    ids=["short-read", "http-503", "timeout"],
)
def test_a_transient_failure_is_retried(tmp_path, server, route, caplog):
    url = server.add("/m.tar.gz", route)
    retry = dataclasses.replace(FAST, timeout=0.3)
    with caplog.at_level(logging.WARNING, logger="core.artifacts"):
        path = fetch(custom(tmp_path, url, sha256(SMALL)), retry=retry)
    assert (path / "m/labels.txt").read_bytes() == b"person\n"
    assert server.hits["/m.tar.gz"] == 2
    assert "retrying in" in caplog.text


def test_client_errors_are_not_retried(tmp_path, server):
    url = server.add("/gone.tar.gz", Route(SMALL, status=404))
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(custom(tmp_path, url, sha256(SMALL)))
    assert server.hits["/gone.tar.gz"] == 1


def test_an_oversized_download_is_refused(tmp_path, server):
    url = server.add("/m.tar.gz", Route(SMALL))
    with pytest.raises(DownloadError, match="over the 100-byte limit"):
        fetch(custom(tmp_path, url, sha256(SMALL)), limits=Limits(archive_bytes=100))
    assert_nothing_installed(tmp_path)


def test_redirects_are_followed_to_http_only(tmp_path, server):
    url = server.add("/m.tar.gz", Route(SMALL))
    moved = server.add("/moved.tar.gz", Route(b"", redirect=url))
    assert (fetch(custom(tmp_path, moved, sha256(SMALL))) / "m/labels.txt").is_file()
    sneaky = server.add("/sneaky.tar.gz", Route(b"", redirect="ftp://127.0.0.1/m.tar.gz"))
    with pytest.raises(DownloadError, match="refusing redirect .* to ftp://127.0.0.1/m.tar.gz"):
        fetch(custom(tmp_path / "other", sneaky, sha256(SMALL)))
    assert server.hits["/sneaky.tar.gz"] == 1


def test_credentials_in_a_url_are_sent_but_stay_out_of_the_manifest(tmp_path, server):
    plain = server.add("/m.tar.gz", Route(SMALL, authorization="Basic dXNlcjpzM2NyZXQh"))  # user:s3cret!
    url = plain.replace("http://", "http://user:s3cret%21@")
    assert redact(url) == plain
    assert read_manifest(fetch(custom(tmp_path, url, sha256(SMALL)))).url == plain
    with pytest.raises(DownloadError, match="HTTP 401"):
        fetch(custom(tmp_path / "anonymous", plain, sha256(SMALL)))


def test_other_url_schemes_are_refused(tmp_path):
    with pytest.raises(UnsupportedURLError, match="unsupported URL scheme 'ftp'"):
        fetch(custom(tmp_path, "ftp://127.0.0.1/m.tar.gz", "0" * 64))


# --- second run ------------------------------------------------------------------------------
