"""The pure parts of api/security.py: which CSP a path gets, and the key comparison."""
from __future__ import annotations

from api.security import content_security_policy, key_matches


def test_only_the_swagger_ui_gets_inline_scripts() -> None:
    for path in ("/", "/swaggerui/swagger-ui-bundle.js"):
        assert "'unsafe-inline'" in content_security_policy(path)
    for path in ("/app", "/app/index.html", "/model/predict", "/swagger.json", "/swaggerui"):
        policy = content_security_policy(path)
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert "frame-ancestors 'none'" in policy


def test_web_app_policy_allows_what_a_camera_page_needs() -> None:
    policy = content_security_policy("/app")
    assert "img-src 'self' blob: data:" in policy
    assert "media-src 'self' blob: mediastream:" in policy
    assert "connect-src 'self'" in policy


def test_key_matches_only_the_exact_key() -> None:
    key = "s3cret-key-0123456789"
    assert key_matches(key, key)
    assert not key_matches(None, key)
    assert not key_matches(key[:-1], key)
    assert not key_matches(key + "x", key)
    assert not key_matches("\u00e9" * 21, key)
