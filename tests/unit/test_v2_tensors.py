"""The v2 wire format against tritonclient's own encoder and decoder, without a server: what
tritonclient builds, ``parse_request`` reads; what ``encode_response`` writes, tritonclient reads."""

from __future__ import annotations

import numpy as np
import pytest

from api.v2.tensors import (
    HEADER_LENGTH,
    OutputTensor,
    encode_response,
    parse_request,
    read_bytes_element,
    read_uint8,
)
from core.errors import InvalidInput

httpclient = pytest.importorskip("tritonclient.http")


def tritonclient_request(inputs, outputs=None, **kw) -> tuple[bytes, str | None]:
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs, **kw)
    return body, None if json_size is None else str(json_size)


def test_reads_what_tritonclient_sends_binary_and_json() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for binary in (True, False):
        rgb = httpclient.InferInput("image_rgb", [2, 3, 3], "UINT8")
        rgb.set_data_from_numpy(pixels, binary_data=binary)
        body, length = tritonclient_request([rgb], request_id="r1", parameters={"threshold": 0.25})
        assert (length is not None) == binary
        request = parse_request(body, length)
        assert request.id == "r1" and request.parameters["threshold"] == 0.25
        assert request.binary_output  # tritonclient asks for binary outputs when none are named
        np.testing.assert_array_equal(read_uint8(request.inputs[0]), pixels)


def test_reads_a_binary_bytes_tensor() -> None:
    image = httpclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([b"\xff\xd8 not really a jpeg \x00"], dtype=object))
    body, length = tritonclient_request([image])
    assert read_bytes_element(parse_request(body, length).inputs[0]) == b"\xff\xd8 not really a jpeg \x00"


def test_nested_json_data_must_follow_the_shape() -> None:
    nested = [[[1, 2, 3], [4, 5, 6]]]
    ok = parse_request(
        b'{"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [1, 2, 3], "data": %s}]}'
        % str(nested).encode(),
        None,
    )
    assert read_uint8(ok.inputs[0]).tolist() == nested
    wrong = parse_request(
        b'{"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [1, 3, 2], "data": %s}]}'
        % str(nested).encode(),
        None,
    )
    with pytest.raises(InvalidInput, match="does not match"):
        read_uint8(wrong.inputs[0])


@pytest.mark.parametrize("binary_output", [True, False])
def test_tritonclient_reads_what_encode_response_writes(binary_output) -> None:
    outputs = [
        OutputTensor("detection_boxes", "FP32", np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)),
        OutputTensor("detection_classes", "INT32", np.array([18], dtype=np.int32)),
        OutputTensor("detection_labels", "BYTES", np.array([b"dog"], dtype=object)),
        OutputTensor("num_detections", "INT32", np.array([1], dtype=np.int32)),
        OutputTensor("empty", "FP32", np.zeros((0, 4), dtype=np.float32)),
    ]
    request = parse_request(
        b'{"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [0]}], '
        b'"outputs": [{"name": "detection_boxes", "parameters": {"binary_data": true}}, {"name": "detection_labels"}], '
        b'"parameters": {"binary_data_output": %s}}' % (b"true" if binary_output else b"false"),
        None,
    )
    body, headers = encode_response({"model_name": "m", "id": "r1"}, outputs, request)
    length = headers.get(HEADER_LENGTH)
    result = httpclient.InferResult.from_response_body(body, header_length=None if length is None else int(length))
    assert result.get_response()["id"] == "r1"
    np.testing.assert_array_equal(result.as_numpy("detection_boxes"), outputs[0].values)
    assert result.as_numpy("detection_classes").tolist() == [18]
    assert [v if isinstance(v, str) else v.decode() for v in result.as_numpy("detection_labels")] == ["dog"]
    assert result.as_numpy("empty").shape == (0, 4)
    assert headers["Content-Type"] == "application/octet-stream"  # detection_boxes asked for binary
