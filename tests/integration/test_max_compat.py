"""MAX Object Detector's documented calls, replayed against this service over real HTTP.

Written from MAX's public documentation (IBM/MAX-Object-Detector README.md and the Swagger its
flask-restx app publishes, snapshot 7302bae), not from our own README: the README's two curl calls
(the second passes ``threshold`` in the QUERY string), ``/model/metadata``, ``/model/labels``,
Swagger at ``/`` and ``/swagger.json``, and the response shapes MAX documents.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import image_bytes
from tests.support.server import serve_app

#: MAX's README: "The default value for `threshold` is `0.7`."
MAX_DEFAULT_THRESHOLD = 0.7


@pytest.fixture(scope="module")
def url(settings, detector):
    from app import create_app

    with serve_app(create_app(settings, model=detector)) as base:
        yield base


def curl_form(path: str) -> dict:
    """``curl -F "image=@<path>"``: a multipart part named image, with the file name and a type."""
    return {"image": ("dog-human.jpg", image_bytes(path), "image/jpeg")}


def assert_max_prediction_shape(body: dict) -> None:
    """The response MAX's README shows: status ok, predictions of label_id (a string), label,
    probability, detection_box = [ymin, xmin, ymax, xmax] normalised to [0, 1]."""
    assert body["status"] == "ok"
    assert isinstance(body["predictions"], list)
    for p in body["predictions"]:
        assert isinstance(p["label_id"], str) and p["label_id"].isdigit()
        assert isinstance(p["label"], str) and isinstance(p["probability"], float)
        ymin, xmin, ymax, xmax = p["detection_box"]
        assert 0 <= ymin <= ymax <= 1 and 0 <= xmin <= xmax <= 1


def test_readme_predict_with_the_default_threshold(url) -> None:
    # $ curl -F "image=@samples/dog-human.jpg" -XPOST http://127.0.0.1:5000/model/predict
    response = requests.post(f"{url}/model/predict", files=curl_form("dog-human.jpg"), timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert_max_prediction_shape(body)
    assert {"person", "dog"} <= {p["label"] for p in body["predictions"]}
    assert all(p["probability"] >= MAX_DEFAULT_THRESHOLD for p in body["predictions"])


def test_readme_predict_with_threshold_in_the_query_string(url) -> None:
    # $ curl -F "image=@samples/dog-human.jpg" -XPOST http://127.0.0.1:5000/model/predict?threshold=0.5
    query = requests.post(f"{url}/model/predict?threshold=0.5", files=curl_form("dog-human.jpg"), timeout=60)
    form = requests.post(
        f"{url}/model/predict", files=curl_form("dog-human.jpg"), data={"threshold": "0.5"}, timeout=60
    )
    default = requests.post(f"{url}/model/predict", files=curl_form("dog-human.jpg"), timeout=60)
    assert query.status_code == form.status_code == 200
    assert_max_prediction_shape(query.json())
    # The query parameter is not ignored: it means what the form field means.
    assert query.json() == form.json() != default.json()
    assert min(p["probability"] for p in query.json()["predictions"]) < MAX_DEFAULT_THRESHOLD


def test_threshold_in_query_and_form(url) -> None:
    same = requests.post(
        f"{url}/model/predict?threshold=0.5", files=curl_form("dog-human.jpg"), data={"threshold": "0.5"}, timeout=60
    )
    assert same.status_code == 200
    different = requests.post(
        f"{url}/model/predict?threshold=0.5", files=curl_form("dog-human.jpg"), data={"threshold": "0.9"}, timeout=60
    )
    assert different.status_code == 400
    assert "different values" in different.json()["message"]
    for query in ("threshold=abc", "threshold=0.5&threshold=0.6", "treshold=0.5"):
        bad = requests.post(f"{url}/model/predict?{query}", files=curl_form("dog-human.jpg"), timeout=60)
        assert bad.status_code == 400, query
        assert bad.json()["status"] == "error"


def test_annotate_takes_the_query_threshold_too(url) -> None:
    response = requests.post(f"{url}/model/annotate?threshold=0.5", files=curl_form("dog-human.jpg"), timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"


def test_metadata_has_the_fields_max_documents(url) -> None:
    response = requests.get(f"{url}/model/metadata", timeout=10)
    assert response.status_code == 200
    body = response.json()
    # MAX's ModelMetadata model: id, name, description, type, source required; license optional.
    for key in ("id", "name", "description", "type", "source", "license"):
        assert isinstance(body[key], str) and body[key], key
    assert body["type"] == "Object Detection"


def test_labels_have_the_shape_max_documents(url) -> None:
    body = requests.get(f"{url}/model/labels", timeout=10).json()
    assert body["count"] == len(body["labels"]) == 80
    assert {"id": "1", "name": "person"} in body["labels"]
    assert {"id": "18", "name": "dog"} in body["labels"]  # MAX README's dog is label_id "18"
    assert all(set(label) == {"id", "name"} and isinstance(label["id"], str) for label in body["labels"])


def test_swagger_ui_and_spec(url) -> None:
    ui = requests.get(f"{url}/", timeout=10)
    assert ui.status_code == 200 and "text/html" in ui.headers["Content-Type"]
    spec = requests.get(f"{url}/swagger.json", timeout=10)
    # MAX's tests/test.py: 200, application/json, and a title
    assert spec.status_code == 200 and spec.headers["Content-Type"] == "application/json"
    doc = spec.json()
    assert doc["info"]["title"]
    for path, method in (
        ("/model/predict", "post"),
        ("/model/metadata", "get"),
        ("/model/labels", "get"),
    ):
        assert method in doc["paths"][path], path
    params = {p["name"]: p for p in doc["paths"]["/model/predict"]["post"]["parameters"]}
    assert params["image"]["in"] == "formData" and params["image"]["type"] == "file"
    assert params["threshold"]["type"] == "number" and params["threshold"]["default"] == MAX_DEFAULT_THRESHOLD


def test_non_image_is_a_400_as_in_max(url) -> None:
    # MAX's tests/test.py test_predict_non_image: a text file gets 400.
    response = requests.post(
        f"{url}/model/predict", files={"image": ("README.md", b"# not an image", "text/markdown")}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["status"] == "error"
