"""Open Inference Protocol v2 driven by the real ``tritonclient[http]`` over real HTTP, on the real
model: metadata, health, readiness, and inference with binary tensor data on and off, with both
input forms; the detections equal ``/model/predict``'s on the same photo."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import image_bytes
from tests.support.server import serve_app

tritonhttp = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "detection_labels", "num_detections")
KEY = "v2-key-0123456789abcdef"


@pytest.fixture(scope="module")
def url(settings, detector):
    from app import create_app

    with serve_app(create_app(settings, model=detector)) as base:
        yield base


@pytest.fixture(scope="module")
def triton(url):
    client = tritonhttp.InferenceServerClient(url=url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def model_name(detector) -> str:
    return detector.info.id


def max_predictions(url: str, name: str, threshold: float, data: bytes | None = None) -> list[dict]:
    response = requests.post(
        f"{url}/model/predict",
        files={"image": (name, image_bytes(name) if data is None else data)},
        data={"threshold": str(threshold)},
        timeout=60,
    )
    assert response.status_code == 200
    return response.json()["predictions"]


def assert_same_as_max(result, predictions: list[dict]) -> None:
    boxes, scores = result.as_numpy("detection_boxes"), result.as_numpy("detection_scores")
    classes, labels = result.as_numpy("detection_classes"), result.as_numpy("detection_labels")
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and classes.dtype == np.int32
    assert boxes.shape == (len(predictions), 4) and scores.shape == classes.shape == (len(predictions),)
    assert result.as_numpy("num_detections").tolist() == [len(predictions)]
    assert len(predictions) > 0
    np.testing.assert_allclose(boxes, [p["detection_box"] for p in predictions], atol=1e-6)
    np.testing.assert_allclose(scores, [p["probability"] for p in predictions], atol=1e-6)
    assert classes.tolist() == [int(p["label_id"]) for p in predictions]
    assert [v.decode() if isinstance(v, bytes) else v for v in labels] == [p["label"] for p in predictions]


def bytes_input(data: bytes, binary: bool):
    tensor = tritonhttp.InferInput("image", [1], "BYTES")
    value = data if binary else base64.b64encode(data).decode()  # JSON carries the image as base64 text
    tensor.set_data_from_numpy(np.array([value], dtype=object), binary_data=binary)
    return tensor


def rgb_input(pixels: np.ndarray, binary: bool):
    tensor = tritonhttp.InferInput("image_rgb", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    return tensor


def outputs(binary: bool):
    return [tritonhttp.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS]


# --- metadata and health --------------------------------------------------------------------------


def test_server_metadata_and_health(triton, model_name) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(model_name)
    assert not triton.is_model_ready("no-such-model")
    metadata = triton.get_server_metadata()
    assert metadata["name"] and metadata["version"] and "binary_tensor_data" in metadata["extensions"]


def test_model_metadata(triton, model_name, detector) -> None:
    metadata = triton.get_model_metadata(model_name)
    assert metadata["name"] == model_name
    assert metadata["platform"] == "tensorflow_graphdef"
    assert {i["name"]: (i["datatype"], i["shape"]) for i in metadata["inputs"]} == {
        "image": ("BYTES", [1]),
        "image_rgb": ("UINT8", [-1, -1, 3]),
    }
    assert [o["name"] for o in metadata["outputs"]] == list(OUTPUTS)
    (version,) = metadata["versions"]
    assert triton.get_model_metadata(model_name, model_version=version)["name"] == model_name
    assert triton.is_model_ready(model_name, model_version=version)
    assert not triton.is_model_ready(model_name, model_version="no-such-version")


def test_unknown_model_is_a_404_with_an_error(triton, url) -> None:
    with pytest.raises(InferenceServerException, match="unknown model"):
        triton.get_model_metadata("no-such-model")
    response = requests.post(f"{url}/v2/models/no-such-model/infer", data=b"{}", timeout=10)
    assert response.status_code == 404 and set(response.json()) == {"error"}


def test_health_bodies(url) -> None:
    assert requests.get(f"{url}/v2/health/live", timeout=10).json() == {"live": True}
    assert requests.get(f"{url}/v2/health/ready", timeout=10).json() == {"ready": True}
    assert requests.get(f"{url}/v2/", timeout=10).status_code == 200


def test_not_ready_is_503_with_an_error(settings, tmp_path) -> None:
    from app import create_app
    from core import detector_at

    (tmp_path / "frozen_inference_graph.pb").write_bytes(b"corrupt")
    client = create_app(settings, model=detector_at(tmp_path), background_load=False).test_client()
    name = client.get("/model/metadata").get_json()["id"]
    assert client.get("/v2/health/live").status_code == 200
    for path in ("/v2/health/ready", f"/v2/models/{name}/ready"):
        response = client.get(path)
        assert response.status_code == 503 and set(response.get_json()) == {"error"}
    body = {"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [1, 1, 3], "data": [0, 0, 0]}]}
    response = client.post(f"/v2/models/{name}/infer", json=body)
    assert response.status_code == 503 and "failed to load" in response.get_json()["error"]


# --- inference --------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_encoded_image_equals_model_predict(triton, url, model_name, binary) -> None:
    result = triton.infer(
        model_name,
        [bytes_input(image_bytes("dog-human.jpg"), binary)],
        outputs=outputs(binary),
        parameters={"threshold": 0.5},
        request_id="req-1",
    )
    response = result.get_response()
    assert response["model_name"] == model_name and response["id"] == "req-1"
    assert all(("binary_data_size" in o.get("parameters", {})) == binary for o in response["outputs"])
    assert_same_as_max(result, max_predictions(url, "dog-human.jpg", 0.5))


def test_tritonclient_defaults_binary_everything(triton, url, model_name, settings) -> None:
    """``infer(name, [input])``: binary input, and binary_data_output for every output."""
    result = triton.infer(model_name, [bytes_input(image_bytes("dog-human.jpg"), True)])
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])
    assert_same_as_max(result, max_predictions(url, "dog-human.jpg", settings.default_threshold))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("batched", [False, True], ids=["HW3", "1HW3"])
def test_decoded_pixels_equal_model_predict(triton, url, model_name, binary, batched) -> None:
    image = Image.open(io.BytesIO(image_bytes("baby-bear.jpg"))).convert("RGB")
    if not binary:  # as JSON text a 640x476 tensor is 3.6 MB, over the test's 2 MiB body limit
        image = image.resize((320, 238))
    pixels = np.asarray(image)
    png = io.BytesIO()
    image.save(png, "PNG")  # lossless: /model/predict sees exactly these pixels
    result = triton.infer(
        model_name,
        [rgb_input(pixels[np.newaxis] if batched else pixels, binary)],
        outputs=outputs(binary),
        parameters={"threshold": 0.5},
    )
    assert_same_as_max(result, max_predictions(url, "baby-bear.png", 0.5, png.getvalue()))


def test_some_outputs_binary_some_json_and_a_version_path(triton, model_name) -> None:
    version = triton.get_model_metadata(model_name)["versions"][0]
    wanted = [
        tritonhttp.InferRequestedOutput("detection_scores", binary_data=True),
        tritonhttp.InferRequestedOutput("detection_labels", binary_data=False),
    ]
    result = triton.infer(
        model_name, [bytes_input(image_bytes("dog.jpg"), True)], model_version=version, outputs=wanted
    )
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["detection_scores", "detection_labels"]
    assert response["model_version"] == version
    assert "dog" in list(result.as_numpy("detection_labels"))
    assert len(result.as_numpy("detection_scores")) == len(result.as_numpy("detection_labels"))


def test_nothing_found_gives_empty_tensors(triton, model_name) -> None:
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    for binary in (True, False):
        result = triton.infer(model_name, [rgb_input(pixels, binary)], outputs=outputs(binary))
        assert result.as_numpy("detection_boxes").shape == (0, 4)
        assert result.as_numpy("num_detections").tolist() == [0]


@pytest.mark.parametrize(
    "parameters, fragment",
    [({"threshold": 2}, "threshold"), ({"threshold": "0.5"}, "threshold"), ({"threshold": True}, "threshold")],
)
def test_bad_parameters_raise_in_the_client(triton, model_name, parameters, fragment) -> None:
    with pytest.raises(InferenceServerException, match=fragment) as info:
        triton.infer(model_name, [bytes_input(image_bytes("dog.jpg"), True)], parameters=parameters)
    assert info.value.status() == "400"


def test_api_key_protects_infer(settings, detector) -> None:
    from app import create_app

    with serve_app(create_app(replace(settings, api_key=KEY), model=detector)) as base:
        client = tritonhttp.InferenceServerClient(url=base.removeprefix("http://"))
        try:
            name = client.get_model_metadata(detector.info.id)["name"]  # metadata stays open
            with pytest.raises(InferenceServerException, match="API key"):
                client.infer(name, [bytes_input(image_bytes("dog.jpg"), True)])
            result = client.infer(name, [bytes_input(image_bytes("dog.jpg"), True)], headers={"X-API-Key": KEY})
            assert result.as_numpy("num_detections")[0] > 0
        finally:
            client.close()


def test_swagger_documents_v2(client) -> None:
    spec = client.get("/swagger.json").get_json()
    for path, method in (
        ("/v2", "get"),
        ("/v2/health/live", "get"),
        ("/v2/health/ready", "get"),
        ("/v2/models/{name}", "get"),
        ("/v2/models/{name}/ready", "get"),
        ("/v2/models/{name}/infer", "post"),
        ("/v2/models/{name}/versions/{version}/infer", "post"),
    ):
        assert spec["paths"][path][method]["tags"] == ["v2"], path
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]
    assert {"200", "400", "404", "413", "503"} <= set(infer["responses"])
    assert infer["responses"]["400"]["schema"] == {"$ref": "#/definitions/V2Error"}
