"""The MAX-compatible REST API with the real model, through Flask's test client."""

from __future__ import annotations

import io

import pytest

from tests.conftest import image_bytes


def post(client, data=None, **kw):
    return client.post("/model/predict", data=data, content_type=kw.pop("content_type", "multipart/form-data"), **kw)


def upload(name="baby-bear.jpg", data=None, **fields):
    return {"image": (io.BytesIO(image_bytes(name) if data is None else data), name), **fields}


def assert_error(response, status: int, fragment: str):
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["status"] == "error"
    assert fragment in body["message"], body


def test_metadata(client):
    body = client.get("/model/metadata").get_json()
    assert {"id", "name", "description", "type", "source", "license"} <= set(body)
    assert body["type"] == "Object Detection"
    assert body["backend"] == "tf"


def test_metadata_of_a_custom_archive_names_it_without_the_servers_paths(settings, ssdlite_dir):
    """MODEL_URL=file:///.../ssdlite_mobilenet_v2_coco.tar.gz: /model/metadata's source is the archive's
    file name, never the server's absolute path."""
    from app import create_app
    from core.serving.factory import detector

    assert settings.model_url.startswith("file://")  # make test's pin, and .ci/run's
    model = detector(settings.source, settings.models_dir)  # what the service builds (not loaded here)
    body = create_app(settings, model=model, background_load=False).test_client().get("/model/metadata").get_json()
    assert body["source"] == "file: " + settings.model_url.rsplit("/", 1)[-1]
    assert str(settings.model_url.removeprefix("file://").rsplit("/", 1)[0]) not in str(body)


def test_labels_are_the_coco_map(client):
    body = client.get("/model/labels").get_json()
    assert body["count"] == 80 == len(body["labels"])
    assert body["labels"][0] == {"id": "1", "name": "person"}
    assert {"id": "88", "name": "teddy bear"} in body["labels"]


def test_predict_baby_bear(client):
    r = post(client, upload())
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    found = {p["label_id"]: p for p in body["predictions"]}
    assert found["1"]["label"] == "person" and found["1"]["probability"] >= 0.9
    assert found["88"]["label"] == "teddy bear" and found["88"]["probability"] >= 0.9
    for p in body["predictions"]:
        assert set(p) == {"label_id", "label", "probability", "detection_box"}
        assert len(p["detection_box"]) == 4 and all(0 <= v <= 1 for v in p["detection_box"])
    probs = [p["probability"] for p in body["predictions"]]
    assert probs == sorted(probs, reverse=True)
    assert float(r.headers["X-Processing-Time-Ms"]) > 0


def test_default_threshold_is_0_7_and_threshold_filters(client):
    default = post(client, upload("dog.jpg")).get_json()["predictions"]
    low = post(client, upload("dog.jpg", threshold="0.2")).get_json()["predictions"]
    assert all(p["probability"] >= 0.7 for p in default)
    assert len(low) > len(default)
    assert default == [p for p in low if p["probability"] >= 0.7]


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"threshold": "abc"}, "threshold must be a number"),
        ({"threshold": "NaN"}, "threshold must be a number"),
        ({"threshold": "-1"}, "threshold must be a number"),
        ({"threshold": "2"}, "threshold must be a number"),
        ({"threshold": "inf"}, "threshold must be a number"),
    ],
)
def test_bad_threshold_is_400(client, fields, fragment):
    assert_error(post(client, upload(**fields)), 400, fragment)


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "empty"),
        (b"this is text, not a picture", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 100, "not an image"),  # a JPEG signature and nothing else
    ],
)
def test_bad_images_are_400(client, data, fragment):
    assert_error(post(client, upload("bad.jpg", data=data)), 400, fragment)


def test_truncated_photo_is_400(client):
    data = image_bytes("jockey.jpg")
    assert_error(post(client, upload("jockey.jpg", data=data[: len(data) // 3])), 400, "truncated")


def test_missing_field_wrong_type_and_two_images_are_400(client):
    assert_error(post(client, {"file": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")}), 400, "missing")
    assert_error(post(client, b'{"image": "x"}', content_type="application/json"), 400, "multipart")
    two = {"image": [(io.BytesIO(image_bytes("dog.jpg")), "a.jpg"), (io.BytesIO(image_bytes("dog.jpg")), "b.jpg")]}
    assert_error(post(client, two), 400, "exactly one")


def test_body_over_limit_is_413(client, settings):
    data = b"\xff" * (settings.max_upload_bytes + 1)
    assert_error(post(client, upload("big.jpg", data=data)), 413, "larger than the limit")


def test_pixel_bomb_is_400_before_decoding(client):
    from tests.unit.test_images import png_header_only

    assert_error(post(client, upload("bomb.png", data=png_header_only(50_000, 50_000))), 400, "too large")


def test_unknown_path_and_method_are_json(client):
    assert_error(client.get("/no/such/thing"), 404, "not found")
    assert_error(client.get("/model/predict"), 405, "not allowed")


def test_server_still_serves_after_every_error(client):
    post(client, upload("x.jpg", data=b"garbage"))
    post(client, upload(threshold="nan"))
    r = post(client, upload())
    assert r.status_code == 200 and r.get_json()["predictions"]


def test_health_probes(client):
    assert client.get("/health/live").get_json() == {"status": "ok"}
    assert client.get("/health/ready").status_code == 200


def test_swagger_documents_every_parameter_response_and_error(client):
    spec = client.get("/swagger.json").get_json()
    predict = spec["paths"]["/model/predict"]["post"]
    params = {p["name"]: p for p in predict["parameters"]}
    assert params["image"]["in"] == "formData" and params["image"]["type"] == "file" and params["image"]["required"]
    assert params["threshold"]["type"] == "number"
    assert {"200", "400", "413", "503"} <= set(predict["responses"])
    for path in ("/model/metadata", "/model/labels", "/health/live", "/health/ready"):
        assert "200" in spec["paths"][path]["get"]["responses"]
    assert client.get("/").status_code == 200  # Swagger UI


def test_model_that_fails_to_load_is_not_ready_never_500(settings, tmp_path):
    from app import create_app
    from core import detector_at

    (tmp_path / "frozen_inference_graph.pb").write_bytes(b"corrupt")
    app = create_app(settings, model=detector_at(tmp_path), background_load=False)
    c = app.test_client()
    ready = c.get("/health/ready")
    assert ready.status_code == 503 and ready.get_json()["status"] == "failed"
    assert_error(post(c, upload()), 503, "failed to load")
    assert c.get("/health/live").status_code == 200


def test_an_unexpected_error_is_a_500_in_each_protocols_shape(client, detector, monkeypatch):
    """Nothing leaks: an engine crash is logged and answered as each protocol's error body."""

    def crash(_inputs):
        raise RuntimeError("engine exploded: /secret/path")

    monkeypatch.setattr(detector, "predict", crash)
    image = image_bytes("dog.jpg")
    max_ = post(client, upload("dog.jpg"))
    assert max_.status_code == 500 and max_.get_json() == {"status": "error", "message": "internal server error"}
    deepstack = client.post("/v1/vision/detection", data={"image": (io.BytesIO(image), "dog.jpg")})
    assert deepstack.status_code == 500
    assert deepstack.get_json() == {"success": False, "error": "internal server error", "duration": 0}
    pixels = {"name": "image_rgb", "datatype": "UINT8", "shape": [1, 1, 3], "data": [0, 0, 0]}
    v2 = client.post(f"/v2/models/{detector.info.id}/infer", json={"inputs": [pixels]})
    assert v2.status_code == 500 and v2.get_json() == {"error": "internal server error"}


def test_swagger_version_is_the_project_version(client):
    import tomllib

    from tests.conftest import ROOT

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert client.get("/swagger.json").get_json()["info"]["version"] == version
