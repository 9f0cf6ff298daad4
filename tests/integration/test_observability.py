"""Request ids, the JSON request log line and the Prometheus metrics, on the real app and model."""

from __future__ import annotations

import io
import re

from tests.conftest import image_bytes


def predict(client, data: bytes, **headers):
    return client.post(
        "/model/predict", data={"image": (io.BytesIO(data), "x.jpg"), "threshold": "0.5"}, headers=headers
    )


def test_a_safe_incoming_request_id_is_echoed_and_logged(client, request_records) -> None:
    response = predict(client, image_bytes("dog.jpg"), **{"X-Request-ID": "client-id-42"})
    assert response.headers["X-Request-ID"] == "client-id-42"
    (record,) = request_records
    assert record.fields["request_id"] == "client-id-42"


def test_an_unsafe_request_id_is_replaced(client) -> None:
    response = client.get("/model/labels", headers={"X-Request-ID": "bad id <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_errors_get_a_request_id_too(client) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/no/such/path").headers["X-Request-ID"])


def test_one_log_line_per_request_with_size_pixels_status_and_latency(client, request_records) -> None:
    data = image_bytes("dog.jpg")
    response = predict(client, data)
    (record,) = request_records
    fields = record.fields
    assert fields["request_id"] == response.headers["X-Request-ID"]
    assert (fields["method"], fields["path"], fields["status"]) == ("POST", "/model/predict", 200)
    assert fields["image_bytes"] == len(data)
    assert fields["image_pixels"] == 768 * 576  # dog.jpg
    assert fields["body_bytes"] > len(data)
    assert fields["latency_ms"] > 0


def test_a_refused_image_is_logged_with_its_status(client, request_records) -> None:
    predict(client, b"not an image")
    (record,) = request_records
    assert record.fields["status"] == 400 and record.fields["image_bytes"] == 12
    assert "image_pixels" not in record.fields


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            sample_labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(sample_labels.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_and_inference_by_endpoint_and_status(client) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    predict(client, image_bytes("dog.jpg"))
    predict(client, b"junk")
    client.get("/no/such/path")
    after = client.get("/metrics")
    assert after.headers["Content-Type"].startswith("text/plain")
    text = after.get_data(as_text=True)

    def grew(name: str, **labels: str) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    assert grew("objdet_http_requests_total", endpoint="/model/predict", method="POST", status="200") == 1
    assert grew("objdet_http_requests_total", endpoint="/model/predict", method="POST", status="400") == 1
    assert grew("objdet_http_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    assert (
        grew("objdet_http_request_duration_seconds_count", endpoint="/model/predict", method="POST", status="200") == 1
    )
    assert grew("objdet_inference_seconds_count") == 1  # the junk upload never reached the model
    assert metric(text, "objdet_model_info", backend="tf") == 1
    assert metric(text, "objdet_model_ready") == 1


def test_client_chosen_methods_do_not_create_label_values(client) -> None:
    client.open("/model/labels", method="BREW")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="BREW"' not in text
    assert metric(text, "objdet_http_requests_total", method="other", status="405") >= 1
