"""CORS allowlist, the optional API key and the security headers, on the real app and model."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from tests.conftest import image_bytes

KEY = "s3cret-key-0123456789"
ORIGIN = "https://app.example.com"


@pytest.fixture()
def make_client(settings, detector):
    from app import create_app

    return lambda **changes: create_app(replace(settings, **changes), model=detector).test_client()


def predict(client, **headers):
    return client.post(
        "/model/predict", data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")}, headers=headers
    )


# --- API key ------------------------------------------------------------------------------------


def test_without_a_configured_key_predict_is_open(client) -> None:
    assert predict(client).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong-key-0123456789"},
        {"X-API-Key": KEY[:-1]},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_wrong_key_gets_401_json(make_client, headers) -> None:
    response = predict(make_client(api_key=KEY), **headers)
    assert response.status_code == 401
    assert response.get_json()["status"] == "error"
    assert "X-API-Key" in response.get_json()["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": f"bearer {KEY}"}]
)
def test_right_key_in_either_header_is_accepted(make_client, headers) -> None:
    response = predict(make_client(api_key=KEY), **headers)
    assert response.status_code == 200
    assert "dog" in {p["label"] for p in response.get_json()["predictions"]}


def test_key_is_checked_before_the_body_is_read(make_client, settings) -> None:
    """An unauthenticated client cannot make the server parse a big upload."""
    response = make_client(api_key=KEY).post(
        "/model/predict", data={"image": (io.BytesIO(b"x" * (settings.max_upload_bytes + 1)), "big.jpg")}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/model//predict", "/model/%70redict"])
def test_other_spellings_of_the_path_do_not_skip_the_key(make_client, path) -> None:
    client = make_client(api_key=KEY)
    response = client.post(path, data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")})
    assert response.status_code in (401, 404, 308)
    if response.status_code == 308:  # merged slashes: the redirect target is checked in turn
        assert predict(client).status_code == 401


@pytest.mark.parametrize(
    "path", ["/health/live", "/health/ready", "/model/metadata", "/model/labels", "/metrics", "/swagger.json"]
)
def test_probes_metadata_labels_and_metrics_stay_open(make_client, path) -> None:
    assert make_client(api_key=KEY).get(path).status_code == 200


def test_swagger_documents_the_key_only_when_configured(client, make_client) -> None:
    assert "securityDefinitions" not in client.get("/swagger.json").get_json()
    spec = make_client(api_key=KEY).get("/swagger.json").get_json()
    assert spec["securityDefinitions"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    predict_op = spec["paths"]["/model/predict"]["post"]
    assert predict_op["security"] == [{"apiKey": []}, {"bearer": []}]
    assert "401" in predict_op["responses"]
    assert "security" not in spec["paths"]["/model/labels"]["get"]


# --- CORS ---------------------------------------------------------------------------------------


def test_cors_is_off_by_default(client) -> None:
    response = client.get("/model/labels", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options("/model/predict", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_allowed_origin_gets_cors_headers_and_a_preflight(make_client) -> None:
    client = make_client(cors_origins=(ORIGIN,), api_key=KEY)
    preflight = client.options(
        "/model/predict",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )
    assert preflight.status_code == 204  # no key needed: browsers send none on a preflight
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    response = predict(client, Origin=ORIGIN, **{"X-API-Key": KEY})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_other_origins_get_no_cors_headers(make_client) -> None:
    client = make_client(cors_origins=(ORIGIN,))
    for origin in ("https://evil.example.com", "https://app.example.com.evil.com", "null"):
        response = client.get("/model/labels", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in response.headers
        preflight = client.options(
            "/model/predict", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert "Access-Control-Allow-Origin" not in preflight.headers


# --- security headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [("get", "/model/labels"), ("get", "/nope"), ("get", "/"), ("post", "/model/predict"), ("get", "/metrics")],
)
def test_every_response_carries_the_security_headers(client, method, path) -> None:
    headers = getattr(client, method)(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_swagger_ui_gets_its_relaxed_policy_and_the_api_the_strict_one(client) -> None:
    assert "'unsafe-inline'" in client.get("/").headers["Content-Security-Policy"]
    assert client.get("/model/labels").headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_web_app_keeps_its_own_policy_and_gets_the_other_headers(client) -> None:
    response = client.get("/app")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "mediastream:" in policy and "'unsafe-inline'" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


# --- the other protocols: the same key, each in its own error shape --------------------------------


@pytest.mark.parametrize(
    "path",
    ["/v1/vision/detection", "/v2/models/{model}/infer", "/v2/models/{model}/versions/1/infer"],
)
def test_deepstack_and_v2_inference_need_the_key(make_client, detector, path) -> None:
    client = make_client(api_key=KEY)
    path = path.format(model=detector.info.id)
    response = client.post(path, data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")})
    assert response.status_code == 401
    body = response.get_json()
    assert "API key" in body["error"] and "status" not in body
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_deepstack_takes_the_key_as_a_form_field_or_a_header(make_client) -> None:
    client = make_client(api_key=KEY)

    def detect(headers=None, **form):
        data = {"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg"), **form}
        return client.post("/v1/vision/detection", data=data, headers=headers or {})

    assert detect(api_key=KEY).status_code == 200
    assert detect(headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert detect(api_key="wrong-key-0123456789").status_code == 401
    assert detect(api_key=[KEY, KEY]).status_code == 401  # sent twice: not a key


@pytest.mark.parametrize("path", ["/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{model}"])
def test_v2_metadata_and_health_stay_open(make_client, detector, path) -> None:
    assert make_client(api_key=KEY).get(path.format(model=detector.info.id)).status_code == 200


def test_swagger_documents_the_key_on_every_protected_operation(make_client) -> None:
    spec = make_client(api_key=KEY).get("/swagger.json").get_json()
    for path, error in (
        ("/v1/vision/detection", "DeepStackError"),
        ("/v2/models/{name}/infer", "V2Error"),
        ("/v2/models/{name}/versions/{version}/infer", "V2Error"),
    ):
        operation = spec["paths"][path]["post"]
        assert operation["security"] == [{"apiKey": []}, {"bearer": []}], path
        assert operation["responses"]["401"]["schema"] == {"$ref": f"#/definitions/{error}"}
    assert "security" not in spec["paths"]["/v2/models/{name}"]["get"]
