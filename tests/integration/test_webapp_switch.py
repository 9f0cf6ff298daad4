"""``/app`` is served, self-contained, and really gone when ``WEBAPP_ENABLED`` is false."""

import dataclasses
import re

import pytest

from app import create_app

FILES = ("/app", "/app/app.js", "/app/app.css")


@pytest.fixture()
def app_client(settings, detector):
    def make(enabled: bool):
        return create_app(dataclasses.replace(settings, webapp_enabled=enabled), model=detector).test_client()

    return make


def test_disabled_app_answers_json_404(app_client):
    client = app_client(False)
    for path in (*FILES, "/app/"):
        r = client.get(path)
        assert r.status_code == 404 and r.get_json()["status"] == "error", path
    assert client.get("/model/metadata").status_code == 200  # the API itself is unaffected


def test_enabled_app_is_served_with_no_external_references(app_client):
    client = app_client(True)
    types = {}
    for path in FILES:
        r = client.get(path)
        assert r.status_code == 200, path
        types[path] = r.mimetype
        text = r.get_data(as_text=True)
        assert not re.search(r"https?://", text, re.IGNORECASE), f"{path} references an external URL"
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert types == {"/app": "text/html", "/app/app.js": "text/javascript", "/app/app.css": "text/css"}
    html = client.get("/app").get_data(as_text=True)
    assert 'src="app/app.js"' in html and 'href="app/app.css"' in html


def test_trailing_slash_redirects_and_nothing_outside_static_is_served(app_client):
    client = app_client(True)
    r = client.get("/app/")
    assert r.status_code == 308 and r.headers["Location"] in ("../app", "/app")
    for path in ("/app/../config.py", "/app/..%2fconfig.py", "/app/missing.js"):
        assert client.get(path).status_code == 404, path
