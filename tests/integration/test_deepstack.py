"""DeepStack's ``/v1/vision/detection`` on the real model: called the way its clients call it (Frigate's
deepstack detector byte for byte), with pixel boxes that are MAX's boxes scaled to the picture."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import image_bytes
from tests.integration.test_hostile_input import exif_rotated_jpeg, png_declaring
from tests.support.server import serve_app

KEY = "frigate-key-0123456789"
URL_PATH = "/v1/vision/detection"
#: frigate/labelmap.txt: COCO names by index (the ones this test's photos produce are enough).
FRIGATE_LABELS = {0: "person", 15: "cat", 16: "dog", 17: "horse", 2: "car", 87: "teddy bear"}


@pytest.fixture(scope="module")
def keyed_url(settings, detector):
    from app import create_app

    with serve_app(create_app(replace(settings, api_key=KEY), model=detector)) as base:
        yield base


def frigate_tensor_jpeg(name: str = "dog-human.jpg", size: tuple[int, int] = (320, 320)) -> bytes:
    """What Frigate sends: its model-input tensor (320x320 by default) re-encoded with PIL as JPEG."""
    image = Image.open(io.BytesIO(image_bytes(name))).convert("RGB").resize(size)
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def frigate_detect(session: requests.Session, api_url: str, api_key: str, image: bytes, size=(320, 320)):
    """frigate/detectors/plugins/deepstack.py ``detect_raw``, minus the labelmap file."""
    width, height = size
    response = session.post(api_url, data={"api_key": api_key}, files={"image": image}, timeout=10)
    response_json = response.json()
    detections = np.zeros((20, 6), np.float32)
    if response_json.get("predictions") is None:
        return detections, response
    labels = {name: index for index, name in FRIGATE_LABELS.items()}
    for i, detection in enumerate(response_json.get("predictions")):
        if detection["confidence"] < 0.4:
            break
        label = detection["label"].lower()
        label = "car" if label == "truck" else label
        if label not in labels:
            break
        detections[i] = [
            labels[label],
            float(detection["confidence"]),
            detection["y_min"] / height,
            detection["x_min"] / width,
            detection["y_max"] / height,
            detection["x_max"] / width,
        ]
    return detections, response


def test_frigate_plugin_call_byte_for_byte(keyed_url) -> None:
    with requests.Session() as session:
        detections, response = frigate_detect(session, f"{keyed_url}{URL_PATH}", KEY, frigate_tensor_jpeg())
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True
        found = {FRIGATE_LABELS[int(row[0])] for row in detections if row[1] > 0}
        assert {"person", "dog"} <= found
        assert all(0 <= v <= 1 for row in detections for v in row[2:])
        # wrong or missing key: DeepStack's 401, which Frigate tolerates (no "predictions")
        wrong, response = frigate_detect(session, f"{keyed_url}{URL_PATH}", "wrong-key-0123456789", b"")
        assert response.status_code == 401 and not wrong.any()
        assert response.json() == {"success": False, "error": response.json()["error"], "duration": 0}
        assert "api_key" in response.json()["error"]


def test_frigate_default_empty_api_key_works_when_the_service_has_none(client) -> None:
    # Frigate always sends api_key, "" by default; an open service must not call it an unknown field.
    response = client.post(URL_PATH, data={"api_key": "", "image": (io.BytesIO(frigate_tensor_jpeg()), "image")})
    assert response.status_code == 200 and response.get_json()["success"] is True


def test_key_in_a_header_works_too(keyed_url) -> None:
    response = requests.post(
        f"{keyed_url}{URL_PATH}", headers={"X-API-Key": KEY}, files={"image": frigate_tensor_jpeg()}, timeout=30
    )
    assert response.status_code == 200


def test_response_fields_clients_read(client) -> None:
    response = client.post(URL_PATH, data={"image": (io.BytesIO(image_bytes("dog-human.jpg")), "dog-human.jpg")})
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True and body["duration"] == 0 and body["code"] == 200
    assert body["count"] == len(body["predictions"]) > 0
    assert body["message"].startswith("Found ")
    assert body["moduleId"] and body["command"] == "detect" and body["requestId"] == response.headers["X-Request-ID"]
    assert isinstance(body["inferenceMs"], int) and isinstance(body["processMs"], int)
    confidences = [p["confidence"] for p in body["predictions"]]
    assert confidences == sorted(confidences, reverse=True)
    assert min(confidences) >= 0.4  # DeepStack's default min_confidence
    for p in body["predictions"]:
        assert set(p) == {"label", "confidence", "x_min", "y_min", "x_max", "y_max"}
        assert all(isinstance(p[k], int) for k in ("x_min", "y_min", "x_max", "y_max"))
        assert 0 <= p["x_min"] <= p["x_max"] <= 640 and 0 <= p["y_min"] <= p["y_max"] <= 962


def pixel_boxes_from_max(client, data: bytes, size: tuple[int, int], threshold: str) -> list[tuple]:
    predict = client.post("/model/predict", data={"image": (io.BytesIO(data), "p.jpg"), "threshold": threshold})
    width, height = size
    # round, not int(): the nearest pixel (DeepStack truncates its pixel boxes; ours start normalised)
    return [
        (
            p["label"],
            p["probability"],
            round(p["detection_box"][1] * width),
            round(p["detection_box"][0] * height),
            round(p["detection_box"][3] * width),
            round(p["detection_box"][2] * height),
        )
        for p in predict.get_json()["predictions"]
    ]


@pytest.mark.parametrize(
    "data, size",
    [
        (lambda: image_bytes("dog-human.jpg"), (640, 962)),
        (lambda: image_bytes("kite.jpg"), (1352, 900)),  # big enough to be decoded at reduced scale
        (exif_rotated_jpeg, (640, 476)),  # baby-bear stored turned, EXIF orientation 6: upright is 640x476
    ],
    ids=["dog-human", "kite", "exif-rotated"],
)
def test_pixel_boxes_are_the_max_boxes_scaled_to_the_upright_picture(client, data, size) -> None:
    data = data()
    deepstack = client.post(URL_PATH, data={"image": (io.BytesIO(data), "p.jpg"), "min_confidence": "0.3"})
    got = [
        (p["label"], p["confidence"], p["x_min"], p["y_min"], p["x_max"], p["y_max"])
        for p in deepstack.get_json()["predictions"]
    ]
    expected = pixel_boxes_from_max(client, data, size, "0.3")
    # MAX's boxes have 6 decimals; the pixel may differ by one where that rounding crosses a half pixel
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected, strict=True):
        assert g[:2] == e[:2]
        assert all(abs(a - b) <= 1 for a, b in zip(g[2:], e[2:], strict=True)), (g, e)
    assert sum(g[2:] == e[2:] for g, e in zip(got, expected, strict=True)) >= len(got) - 1


def test_min_confidence_as_form_field_or_query(client) -> None:
    def run(path, **form):
        return client.post(path, data={"image": (io.BytesIO(image_bytes("dog-human.jpg")), "d.jpg"), **form})

    form = run(URL_PATH, min_confidence="0.9").get_json()["predictions"]
    query = run(f"{URL_PATH}?min_confidence=0.9").get_json()["predictions"]
    assert form == query and all(p["confidence"] >= 0.9 for p in form)
    assert len(run(URL_PATH).get_json()["predictions"]) > len(form)


def test_at_most_20_predictions_best_first(client) -> None:
    body = client.post(
        URL_PATH, data={"image": (io.BytesIO(image_bytes("horses.jpg")), "h.jpg"), "min_confidence": "0"}
    ).get_json()
    assert body["count"] == len(body["predictions"]) == 20  # the SSD head gives 100 at 0
    confidences = [p["confidence"] for p in body["predictions"]]
    assert confidences == sorted(confidences, reverse=True)


def deepstack_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert set(body) == {"success", "error", "duration"} and body["success"] is False and body["duration"] == 0
    for word in words:
        assert word in body["error"], body


@pytest.mark.parametrize(
    "form, words",
    [
        ({"min_confidence": "2"}, ["min_confidence"]),
        ({"min_confidence": "nan"}, ["min_confidence"]),
        ({"min_confidence": "abc"}, ["min_confidence"]),
        ({"min_conf": "0.5"}, ["'min_conf'"]),
    ],
)
def test_bad_min_confidence_or_field_is_a_deepstack_400(client, form, words) -> None:
    data = {"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg"), **form}
    deepstack_error(client.post(URL_PATH, data=data), 400, *words)


def test_bad_images_are_deepstack_400s(client) -> None:
    deepstack_error(client.post(URL_PATH, data={"image": (io.BytesIO(b"not an image"), "x.jpg")}), 400, "image")
    deepstack_error(client.post(URL_PATH, data={"image": (io.BytesIO(png_declaring(50_000, 50_000)), "b.png")}), 400)
    deepstack_error(client.post(URL_PATH, data={}), 400, "image")


def test_too_large_is_a_deepstack_413(client, settings) -> None:
    data = {"image": (io.BytesIO(b"x" * (settings.max_upload_bytes + 1)), "big.jpg")}
    deepstack_error(client.post(URL_PATH, data=data), 413, str(settings.max_upload_bytes))


def test_not_ready_is_a_deepstack_503(settings, tmp_path) -> None:
    from app import create_app
    from core import detector_at

    (tmp_path / "frozen_inference_graph.pb").write_bytes(b"corrupt")
    client = create_app(settings, model=detector_at(tmp_path), background_load=False).test_client()
    data = {"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")}
    deepstack_error(client.post(URL_PATH, data=data), 503)


def test_metrics_count_deepstack_requests(client) -> None:
    client.post(URL_PATH, data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")})
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'endpoint="{URL_PATH}",method="POST",status="200"' in metrics


def test_swagger_documents_deepstack(client, settings, detector) -> None:
    from app import create_app

    spec = create_app(replace(settings, api_key=KEY), model=detector).test_client().get("/swagger.json").get_json()
    operation = spec["paths"][URL_PATH]["post"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"image", "min_confidence", "api_key"} <= set(params)
    assert params["min_confidence"]["default"] == 0.4
    assert {"200", "400", "401", "413", "503"} <= set(operation["responses"])
    assert operation["responses"]["401"]["schema"] == {"$ref": "#/definitions/DeepStackError"}
    assert operation["tags"] == ["deepstack"]
