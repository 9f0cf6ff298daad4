"""The pure parts of api/security.py: which CSP a path gets, and the key comparison."""

from __future__ import annotations

import pytest

from api.errors import relative_location
from api.middleware.security import content_security_policy, key_matches


def test_only_the_swagger_ui_gets_inline_scripts() -> None:
    for path in ("/", "/swaggerui/swagger-ui-bundle.js"):
        assert "'unsafe-inline'" in content_security_policy(path)
    for path in ("/model/predict", "/swagger.json", "/swaggerui", "/metrics"):
        policy = content_security_policy(path)
        assert policy.startswith("default-src 'none'") and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy


def test_key_matches_only_the_exact_key() -> None:
    key = "s3cret-key-0123456789"
    assert key_matches(key, key)
    assert not key_matches(None, key)
    assert not key_matches(key[:-1], key)
    assert not key_matches(key + "x", key)
    assert not key_matches("\u00e9" * 21, key)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://evil.example/model/labels", "/model/labels"),
        ("https://evil.example//evil.example/x?a=1", "/evil.example/x?a=1"),
        ("http://h", "/"),
    ],
)
def test_redirects_keep_only_path_and_query(url, expected):
    assert relative_location(url) == expected
