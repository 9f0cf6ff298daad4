"""Hostile and odd uploads, generated here: each gets a clear JSON 4xx, or the right answer when it
is a valid image, and the service answers a normal request afterwards.

Most go through the Flask test client with the real model; a few go through a real HTTP server,
where body size limits and multipart parsing meet an actual socket.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import image_bytes
from tests.support.hostile_images import png_rgb, progressive_jpeg, with_empty_scans
from tests.support.server import serve_app

THRESHOLD = "0.5"


# --- generated files ---------------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photo(name: str = "baby-bear.jpg") -> Image.Image:
    image = Image.open(io.BytesIO(image_bytes(name)))
    image.load()
    return image


def grayscale_16bit_png() -> bytes:
    wide = np.asarray(photo().convert("L")).astype(np.uint16) * 257  # full 16-bit range
    return encode(Image.fromarray(wide), "PNG")


def animated_gif() -> bytes:
    """Frame 0 is the photo, frame 1 is noise: only the first frame may be analysed."""
    first = photo()
    noise = np.random.default_rng(0).integers(0, 256, (first.height, first.width, 3), dtype=np.uint8)
    return encode(first, "GIF", save_all=True, append_images=[Image.fromarray(noise)], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """Pixels stored turned 90 degrees left, with EXIF orientation 6 ("turn right to view"):
    the upright view is the original photo."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif.tobytes())


# --- helpers -----------------------------------------------------------------------------------


def post(client, data: bytes, filename: str = "upload.jpg", **form):
    response = client.post("/model/predict", data={"image": (io.BytesIO(data), filename), **form})
    return response.status_code, response.get_json()


def iou(a: list[float], b: list[float]) -> float:
    ymin, xmin = max(a[0], b[0]), max(a[1], b[1])
    ymax, xmax = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ymax - ymin) * max(0.0, xmax - xmin)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_same_objects(got: list[dict], expected: list[dict], min_iou: float = 0.9) -> None:
    """Every expected detection is found again: same label, box overlapping by ``min_iou``."""
    assert expected, "the reference image should have detections"
    for want in expected:
        best = max(
            (iou(want["detection_box"], p["detection_box"]) for p in got if p["label"] == want["label"]), default=0.0
        )
        assert best >= min_iou, f"{want['label']} box not found again (best IoU {best:.2f}) in {got}"


def assert_error(status: int, body, expected_status: int, *words: str) -> None:
    assert status == expected_status, body
    assert body["status"] == "error" and isinstance(body["message"], str) and body["message"]
    for word in words:
        assert word in body["message"], body["message"]


@pytest.fixture()
def serves_afterwards(client):
    """Yields the client, then proves a normal request still works on the same app."""
    yield client
    status, body = post(client, image_bytes("dog.jpg"), "dog.jpg", threshold=THRESHOLD)
    assert status == 200 and "dog" in {p["label"] for p in body["predictions"]}


@pytest.fixture(scope="module")
def reference(detector) -> list[dict]:
    """What the model finds on the original upright photo."""
    return detector.predict_json(image_bytes("baby-bear.jpg"), float(THRESHOLD))


# --- images the service must refuse -----------------------------------------------------------


@pytest.mark.parametrize("width, height", [(50_000, 50_000), (10_000, 5_000)])
def test_png_declaring_too_many_pixels_is_refused_before_decoding(serves_afterwards, width, height) -> None:
    data = png_declaring(width, height)
    assert len(data) < 200
    assert_error(*post(serves_afterwards, data, "bomb.png"), 400, "pixels")


@pytest.mark.parametrize(
    "name, data",
    [
        ("truncated.jpg", lambda: image_bytes("dog.jpg")[:20_000]),
        ("random.jpg", lambda: os.urandom(50_000)),
        ("empty.jpg", lambda: b""),
        ("text.jpg", lambda: b"GIF89a but not really a GIF"),
    ],
)
def test_broken_or_fake_images_get_400(serves_afterwards, name, data) -> None:
    assert_error(*post(serves_afterwards, data(), name), 400)


def test_progressive_jpeg_with_thousands_of_empty_scans_is_refused_before_decoding(serves_afterwards) -> None:
    # 4000x3000 with 100,000 empty scans takes tens of seconds to decode (docs/reliability.md);
    # the guard counts scans without decoding, so a small image and 5,000 scans show it.
    data = with_empty_scans(progressive_jpeg(800, 600), 5_000)
    assert_error(*post(serves_afterwards, data, "scans.jpg"), 400, "more than 100 scans", "MAX_JPEG_SCANS")


@pytest.mark.parametrize(
    "data, words",
    [
        (lambda: png_rgb(300, 200, rows=120), ("truncated", "rows are missing")),
        (lambda: png_rgb(300, 200, iend=False), ("truncated", "IEND")),
    ],
    ids=["fewer-rows-than-declared", "no-iend"],
)
def test_structurally_incomplete_png_gets_400(serves_afterwards, data, words) -> None:
    assert_error(*post(serves_afterwards, data(), "incomplete.png"), 400, *words)


def test_complete_generated_png_gets_200(serves_afterwards) -> None:
    status, body = post(serves_afterwards, png_rgb(300, 200), "stripes.png")
    assert status == 200, body


# --- odd but valid images: the right answer ---------------------------------------------------


def test_16_bit_grayscale_png_is_analysed_like_its_8_bit_version(serves_afterwards) -> None:
    assert Image.open(io.BytesIO(grayscale_16bit_png())).mode.startswith("I;16")
    status, body = post(serves_afterwards, grayscale_16bit_png(), "gray16.png", threshold=THRESHOLD)
    assert status == 200
    _, eight_bit = post(serves_afterwards, encode(photo().convert("L"), "PNG"), "gray8.png", threshold=THRESHOLD)
    assert_same_objects(body["predictions"], eight_bit["predictions"])


def test_cmyk_jpeg_gives_the_rgb_answer(serves_afterwards, reference) -> None:
    data = encode(photo().convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    status, body = post(serves_afterwards, data, "cmyk.jpg", threshold=THRESHOLD)
    assert status == 200
    assert_same_objects(body["predictions"], reference)


def test_animated_gif_uses_the_first_frame(serves_afterwards, reference) -> None:
    status, body = post(serves_afterwards, animated_gif(), "animated.gif", threshold=THRESHOLD)
    assert status == 200
    assert_same_objects(body["predictions"], reference)


def test_exif_rotated_jpeg_boxes_follow_the_upright_image(serves_afterwards, reference) -> None:
    status, body = post(serves_afterwards, exif_rotated_jpeg(), "rotated.jpg", threshold=THRESHOLD)
    assert status == 200
    assert_same_objects(body["predictions"], reference)


def test_filename_with_unicode_and_path_separators_is_just_a_name(serves_afterwards, reference) -> None:
    status, body = post(
        serves_afterwards, image_bytes("baby-bear.jpg"), "../../etc/ours\u00e9\u4e2d\\..\\bear.jpg", threshold=THRESHOLD
    )
    assert status == 200
    assert_same_objects(body["predictions"], reference, min_iou=0.99)


# --- malformed requests -----------------------------------------------------------------------


@pytest.mark.parametrize("threshold", ["NaN", "nan", "-1", "2", "abc", "inf", "1e400", "", " "])
def test_bad_thresholds_get_400(serves_afterwards, threshold) -> None:
    assert_error(*post(serves_afterwards, image_bytes("dog.jpg"), threshold=threshold), 400, "threshold")


def test_threshold_sent_twice_gets_400(serves_afterwards) -> None:
    response = serves_afterwards.post(
        "/model/predict", data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg"), "threshold": ["0.5", "0.9"]}
    )
    assert_error(response.status_code, response.get_json(), 400, "once")


def test_misspelt_field_gets_400_instead_of_being_ignored(serves_afterwards) -> None:
    response = serves_afterwards.post(
        "/model/predict", data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg"), "treshold": "0.9"}
    )
    assert_error(response.status_code, response.get_json(), 400, "'treshold'")


def test_wrong_field_name_gets_400(serves_afterwards) -> None:
    response = serves_afterwards.post("/model/predict", data={"file": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")})
    assert_error(response.status_code, response.get_json(), 400, "'image'")


def test_two_images_get_400(serves_afterwards) -> None:
    data = image_bytes("dog.jpg")
    response = serves_afterwards.post(
        "/model/predict", data={"image": [(io.BytesIO(data), "a.jpg"), (io.BytesIO(data), "b.jpg")]}
    )
    assert_error(response.status_code, response.get_json(), 400, "exactly one")


def test_json_body_gets_400(serves_afterwards) -> None:
    response = serves_afterwards.post("/model/predict", json={"image": "aGVsbG8=", "threshold": 0.5})
    assert_error(response.status_code, response.get_json(), 400, "multipart/form-data")


def test_body_over_the_limit_gets_413(serves_afterwards, settings) -> None:
    data = os.urandom(settings.max_upload_bytes + 1)
    assert_error(*post(serves_afterwards, data, "huge.jpg"), 413, str(settings.max_upload_bytes))


# --- the same through a real HTTP server ------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(settings, detector):
    from app import create_app

    with serve_app(create_app(settings, model=detector)) as url:
        yield url


@pytest.mark.parametrize(
    "files, form, expected",
    [
        ({"image": ("bomb.png", png_declaring(50_000, 50_000))}, {}, 400),
        ({"image": ("empty.jpg", b"")}, {}, 400),
        ({"file": ("dog.jpg", b"\xff\xd8\xff")}, {}, 400),
        ({"image": ("dog.jpg", b"\xff\xd8\xff")}, {"threshold": "NaN"}, 400),
    ],
)
def test_hostile_requests_over_http(server_url, files, form, expected) -> None:
    response = requests.post(f"{server_url}/model/predict", files=files, data=form, timeout=60)
    assert_error(response.status_code, response.json(), expected)
    assert response.headers["Content-Type"] == "application/json"


def test_oversized_body_over_http_gets_413_and_the_connection_stays_usable(server_url, settings) -> None:
    with requests.Session() as session:
        response = session.post(
            f"{server_url}/model/predict",
            files={"image": ("huge.jpg", os.urandom(settings.max_upload_bytes * 2))},
            timeout=60,
        )
        assert_error(response.status_code, response.json(), 413)
        again = session.post(
            f"{server_url}/model/predict",
            files={"image": ("dog.jpg", image_bytes("dog.jpg"))},
            data={"threshold": THRESHOLD},
            timeout=60,
        )
    assert again.status_code == 200 and "dog" in {p["label"] for p in again.json()["predictions"]}


def test_exif_rotated_jpeg_over_http(server_url, reference) -> None:
    response = requests.post(
        f"{server_url}/model/predict",
        files={"image": ("rotated.jpg", exif_rotated_jpeg())},
        data={"threshold": THRESHOLD},
        timeout=60,
    )
    assert response.status_code == 200
    assert_same_objects(response.json()["predictions"], reference)


# --- the same guarantees on DeepStack's /v1/vision/detection -------------------------------------

DEEPSTACK = "/v1/vision/detection"


def post_deepstack(client, data: bytes, filename: str = "upload.jpg", **form):
    response = client.post(DEEPSTACK, data={"image": (io.BytesIO(data), filename), **form})
    return response.status_code, response.get_json()


def assert_deepstack_error(status: int, body, expected_status: int, *words: str) -> None:
    assert status == expected_status, body
    assert body["success"] is False and body["duration"] == 0 and isinstance(body["error"], str) and body["error"]
    for word in words:
        assert word in body["error"], body["error"]


def test_deepstack_refuses_a_pixel_bomb_before_decoding(serves_afterwards) -> None:
    assert_deepstack_error(*post_deepstack(serves_afterwards, png_declaring(50_000, 50_000), "bomb.png"), 400, "pixels")


@pytest.mark.parametrize("data", [b"", b"GIF89a but not really a GIF", b"\xff\xd8\xff"])
def test_deepstack_broken_images_get_400(serves_afterwards, data) -> None:
    assert_deepstack_error(*post_deepstack(serves_afterwards, data), 400)


@pytest.mark.parametrize("value", ["NaN", "-1", "2", "abc", "inf", ""])
def test_deepstack_bad_min_confidence_gets_400(serves_afterwards, value) -> None:
    assert_deepstack_error(
        *post_deepstack(serves_afterwards, image_bytes("dog.jpg"), min_confidence=value), 400, "min_confidence"
    )


def test_deepstack_json_body_gets_400(serves_afterwards) -> None:
    response = serves_afterwards.post(DEEPSTACK, json={"image": "aGVsbG8="})
    assert_deepstack_error(response.status_code, response.get_json(), 400, "multipart/form-data")


def test_deepstack_body_over_the_limit_gets_413(serves_afterwards, settings) -> None:
    data = os.urandom(settings.max_upload_bytes + 1)
    assert_deepstack_error(*post_deepstack(serves_afterwards, data), 413, str(settings.max_upload_bytes))


def test_deepstack_oversized_body_over_http_gets_413_and_the_connection_stays_usable(server_url, settings) -> None:
    with requests.Session() as session:
        response = session.post(
            f"{server_url}{DEEPSTACK}", files={"image": os.urandom(settings.max_upload_bytes * 2)}, timeout=60
        )
        assert_deepstack_error(response.status_code, response.json(), 413)
        again = session.post(f"{server_url}{DEEPSTACK}", files={"image": image_bytes("dog.jpg")}, timeout=60)
    assert again.status_code == 200 and "dog" in {p["label"] for p in again.json()["predictions"]}


# --- and on Open Inference Protocol v2's /v2/models/{name}/infer ---------------------------------


def v2_path(detector) -> str:
    return f"/v2/models/{detector.info.id}/infer"


def rgb_tensor(shape, **fields) -> dict:
    return {"name": "image_rgb", "datatype": "UINT8", "shape": shape, **fields}


def post_v2(client, detector, body: bytes, **headers):
    response = client.post(v2_path(detector), data=body, headers=headers)
    return response.status_code, response.get_json()


def assert_v2_error(status: int, body, expected_status: int, *words: str) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    for word in words:
        assert word in body["error"], body["error"]


def as_json(value) -> bytes:
    import json

    return json.dumps(value).encode()


def binary_request(header: dict, blob: bytes) -> tuple[bytes, dict]:
    text = as_json(header)
    return text + blob, {"Inference-Header-Content-Length": str(len(text))}


@pytest.mark.parametrize("shape", [[50_000, 50_000, 3], [1, 100_000, 100_000, 3], [10**30, 10**30, 3]])
def test_v2_tensor_declaring_too_many_pixels_is_refused_before_allocating(serves_afterwards, detector, shape) -> None:
    # a few bytes that declare gigapixels, in JSON and as binary data: refused from the header
    json_body = as_json({"inputs": [rgb_tensor(shape, data=[0, 0, 0])]})
    assert_v2_error(*post_v2(serves_afterwards, detector, json_body), 400, "pixels")
    body, headers = binary_request({"inputs": [rgb_tensor(shape, parameters={"binary_data_size": 3})]}, b"\0\0\0")
    assert_v2_error(*post_v2(serves_afterwards, detector, body, **headers), 400, "pixels")


def test_v2_encoded_pixel_bomb_is_refused_before_decoding(serves_afterwards, detector) -> None:
    bomb = png_declaring(50_000, 50_000)
    header = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 4 + len(bomb)}}
        ]
    }
    body, headers = binary_request(header, struct.pack("<I", len(bomb)) + bomb)
    assert_v2_error(*post_v2(serves_afterwards, detector, body, **headers), 400, "pixels")


@pytest.mark.parametrize(
    "body, words",
    [
        (b"", ["JSON"]),
        (b"not json", ["JSON"]),
        (b"[1, 2]", ["object"]),
        (b"[" * 100_000, ["JSON"]),  # nesting deeper than the parser's recursion limit
        (b'{"inputs": [], "parameters": {"threshold": NaN}}', ["JSON"]),
        (b'{"inputs": []}', ["inputs"]),
        (b'{"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [2, 2, 3]}]}', ["data"]),
        (b'{"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [-2, 2, 3], "data": []}]}', ["dimension"]),
        (b'{"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [2.5, 2, 3], "data": []}]}', ["dimension"]),
        (
            b'{"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [1,1,1,1,1,1,1,1,1], "data": []}]}',
            ["shape"],
        ),
        (b'{"inputs": [{"name": "image_rgb", "datatype": "FP32", "shape": [1, 1, 3], "data": [0, 0, 0]}]}', ["UINT8"]),
        (
            b'{"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 1, 3], "data": [0, 0, 0]}]}',
            ["unknown input"],
        ),
        (
            b'{"id": 5, "inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [1, 1, 3], "data": [0, 0, 0]}]}',
            ["id"],
        ),
        (b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%% not base64"]}]}', ["base64"]),
        (
            b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["aGk=", "aGk="]}]}',
            ["one element"],
        ),
    ],
)
def test_v2_malformed_requests_get_400(serves_afterwards, detector, body, words) -> None:
    assert_v2_error(*post_v2(serves_afterwards, detector, body), 400, *words)


@pytest.mark.parametrize(
    "data, words",
    [
        (list(range(11)), ["needs 12 values"]),  # fewer values than the shape
        (list(range(13)), ["needs 12 values"]),  # more
        ([0] * 11 + [256], ["0..255"]),
        ([0] * 11 + [-1], ["0..255"]),
        ([0.5] * 12, ["0..255"]),
        (["a"] * 12, ["0..255"]),
        ([True] * 12, ["0..255"]),
        ([[0, 0, 0], [0, 0]], ["list of numbers"]),  # ragged
        ([[[[0]]]] * 12, ["does not match"]),  # nested, but not as the shape says
    ],
)
def test_v2_bad_json_tensor_data_gets_400(serves_afterwards, detector, data, words) -> None:
    body = as_json({"inputs": [rgb_tensor([2, 2, 3], data=data)]})
    status, reply = post_v2(serves_afterwards, detector, body)
    assert_v2_error(status, reply, 400)
    assert any(word in reply["error"] for word in words), reply


def test_v2_binary_framing_errors_get_400(serves_afterwards, detector) -> None:
    header = {"inputs": [rgb_tensor([2, 2, 3], parameters={"binary_data_size": 12})]}
    body, headers = binary_request(header, b"\0" * 11)  # fewer bytes than declared
    assert_v2_error(*post_v2(serves_afterwards, detector, body, **headers), 400, "binary data")
    body, headers = binary_request(header, b"\0" * 13)  # a byte no input claims
    assert_v2_error(*post_v2(serves_afterwards, detector, body, **headers), 400, "belong to no input")
    small = {"inputs": [rgb_tensor([2, 2, 3], parameters={"binary_data_size": 6})]}
    body, headers = binary_request(small, b"\0" * 6)  # the size disagrees with the shape
    assert_v2_error(*post_v2(serves_afterwards, detector, body, **headers), 400, "needs 12 bytes")
    for length in ("99999", "-1", "abc", "0"):
        body = as_json({"inputs": [rgb_tensor([1, 1, 3], data=[0, 0, 0])]})
        status, reply = post_v2(serves_afterwards, detector, body, **{"Inference-Header-Content-Length": length})
        assert_v2_error(status, reply, 400, "Inference-Header-Content-Length" if length != "0" else "raw binary")


def test_v2_compressed_body_gets_400(serves_afterwards, detector) -> None:
    body = zlib.compress(as_json({"inputs": [rgb_tensor([1, 1, 3], data=[0, 0, 0])]}))
    assert_v2_error(
        *post_v2(serves_afterwards, detector, body, **{"Content-Encoding": "deflate"}), 400, "Content-Encoding"
    )


def test_v2_body_over_the_limit_gets_413(serves_afterwards, detector, settings) -> None:
    body = as_json({"inputs": [rgb_tensor([1, 1, 3], data=[0] * (settings.max_upload_bytes // 2))]})
    assert_v2_error(*post_v2(serves_afterwards, detector, body), 413, str(settings.max_upload_bytes))


def test_v2_over_http_with_no_content_type(server_url, detector, settings) -> None:
    """tritonclient sends no Content-Type; errors and limits are the same over a real socket."""
    url = f"{server_url}{v2_path(detector)}"
    with requests.Session() as session:
        huge = session.post(url, data=os.urandom(settings.max_upload_bytes * 2), timeout=60)
        assert "Content-Type" not in huge.request.headers
        assert huge.status_code == 413 and set(huge.json()) == {"error"}
        assert huge.headers["Content-Type"] == "application/json"
        bomb = session.post(url, data=as_json({"inputs": [rgb_tensor([50_000, 50_000, 3], data=[])]}), timeout=60)
        assert bomb.status_code == 400 and "pixels" in bomb.json()["error"]
        photo_b64 = __import__("base64").b64encode(image_bytes("dog.jpg")).decode()
        ok = session.post(
            url,
            data=as_json({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [photo_b64]}]}),
            timeout=60,
        )
    assert ok.status_code == 200
    outputs = {o["name"]: o for o in ok.json()["outputs"]}
    assert "dog" in outputs["detection_labels"]["data"]


def test_a_request_that_finds_the_decode_budget_taken_gets_503_with_retry_after(settings, detector) -> None:
    from dataclasses import replace

    from app import create_app

    app = create_app(replace(settings, decode_budget_mb=16, decode_wait_seconds=0), model=detector)
    client = app.test_client()
    with app.extensions["decode_budget"].reserve(16 << 20):
        response = client.post("/model/predict", data={"image": (io.BytesIO(image_bytes("dog.jpg")), "dog.jpg")})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "decode budget" in response.get_json()["message"]
    assert (
        client.post("/model/predict", data={"image": (io.BytesIO(image_bytes("dog.jpg")), "d.jpg")}).status_code == 200
    )


# --- regressions found by the fuzzer (tests/load/fuzz_images.py) ------------------------------


def wide_gif(width: int = 65_535, height: int = 2) -> bytes:
    return encode(Image.new("P", (width, height)), "GIF")


def test_annotating_an_image_wider_than_jpeg_allows_gets_400_naming_png(settings, detector) -> None:
    # Fuzzer seed 14, input 840 (a GIF declaring 1048576x1, opened as 65535x357) got a 500: the
    # JPEG encoder refuses sides over 65,500 pixels.
    from app import create_app

    client = create_app(settings, model=detector).test_client()
    response = client.post("/model/annotate", data={"image": (io.BytesIO(wide_gif()), "wide.gif")})
    assert_error(response.status_code, response.get_json(), 400, "65500", "format=png")
    response = client.post("/model/annotate", data={"image": (io.BytesIO(wide_gif()), "wide.gif"), "format": "png"})
    assert response.status_code == 200 and response.mimetype == "image/png"


def test_the_fuzzer_input_that_found_it_gets_400(settings, detector) -> None:
    from app import create_app
    from tests.load.fuzz_images import mutated

    fmt, _, data = mutated(14, 840)
    client = create_app(settings, model=detector).test_client()
    response = client.post("/model/annotate", data={"image": (io.BytesIO(data), f"fuzz.{fmt.lower()}")})
    assert response.status_code == 400, response.get_json()


def test_the_fuzzers_slowest_tiff_is_refused_before_pillow_reads_its_tags(serves_afterwards) -> None:
    # Fuzzer seed 14, input 1914: the directory's entry count became 65,291, and Pillow read that
    # many tags out of the pixel data while opening (0.3 s at 480x318, 7 s under load).
    from tests.load.fuzz_images import mutated

    _, _, data = mutated(14, 1914)
    assert_error(*post(serves_afterwards, data, "fuzz.tiff"), 400, "tags refer to more than")
