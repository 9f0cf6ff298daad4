"""``POST /model/annotate`` with the real model, through Flask's test client."""

import io

import numpy as np
import pytest
from PIL import Image

from core.model.annotate import label_colour, layout_labels
from tests.conftest import IMAGES, image_bytes
from tests.unit.test_label_placement import assert_valid


def annotate(client, data: bytes, name="photo.jpg", headers=None, **fields):
    return client.post(
        "/model/annotate",
        data={"image": (io.BytesIO(data), name), **fields},
        content_type="multipart/form-data",
        headers=headers or {},
    )


def predictions(client, data: bytes, threshold: str) -> list[dict]:
    r = client.post(
        "/model/predict",
        data={"image": (io.BytesIO(data), "x.jpg"), "threshold": threshold},
        content_type="multipart/form-data",
    )
    return r.get_json()["predictions"]


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB")).astype(int)


def test_png_answer_is_the_input_with_boxes_drawn_where_the_api_says(client):
    data = image_bytes("baby-bear.jpg")
    r = annotate(client, data, threshold="0.5", format="png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert float(r.headers["X-Processing-Time-Ms"]) > 0
    with Image.open(io.BytesIO(r.data)) as out:
        assert out.format == "PNG"
    original, drawn = pixels(data), pixels(r.data)
    assert drawn.shape == original.shape  # same size as the upload

    boxes = predictions(client, data, "0.5")
    assert {p["label"] for p in boxes} == {"person", "teddy bear"}
    h, w = original.shape[:2]
    changed = np.any(drawn != original, axis=2)
    for p in boxes:
        ymin, xmin, ymax, xmax = p["detection_box"]
        top, bottom = round(ymin * (h - 1)), round(ymax * (h - 1))
        left = round(xmin * (w - 1))
        edge = drawn[top + 5 : bottom - 5, left]  # the box's left edge, below its label
        assert np.all(edge == label_colour(int(p["label_id"]))), p["label"]
        # Inside the box, away from its outline and label, the photo is untouched (PNG is lossless).
        inner = changed[top + h // 10 : bottom - 10, left + 10 : round(xmax * (w - 1)) - 10]
        assert inner.size and not inner.any()
    # Nothing is drawn below the lowest box.
    lowest = max(round(p["detection_box"][2] * (h - 1)) for p in boxes)
    assert not changed[lowest + 3 :].any()


def test_jpeg_is_the_default_and_differs_inside_a_detected_box(client):
    data = image_bytes("dog.jpg")
    r = annotate(client, data, threshold="0.5")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    original, drawn = pixels(data), pixels(r.data)
    assert drawn.shape == original.shape
    dog = next(p for p in predictions(client, data, "0.5") if p["label"] == "dog")
    h, w = original.shape[:2]
    ymin, xmin, ymax, xmax = dog["detection_box"]
    region = (slice(round(ymin * h), round(ymax * h)), slice(round(xmin * w), round(xmax * w)))
    outside = (slice(0, h), slice(w - 40, w))  # a strip at the right border, far from every box
    difference = np.abs(drawn - original)
    assert difference[region].max() > 100  # the box outline, not JPEG noise
    assert difference[outside].mean() < 8


def test_large_photo_keeps_its_full_resolution(client):
    # /model/predict may decode a large JPEG at reduced scale; the drawing must not.
    r = annotate(client, image_bytes("a-pen-i-am.jpg"))
    with Image.open(io.BytesIO(r.data)) as out:
        assert out.size == (1853, 2638)


def test_png_on_accept_header_and_jpeg_when_format_says_so(client):
    data = image_bytes("dog.jpg")
    assert annotate(client, data, headers={"Accept": "image/png"}).mimetype == "image/png"
    assert annotate(client, data, headers={"Accept": "image/png"}, format="jpg").mimetype == "image/jpeg"
    assert annotate(client, data, headers={"Accept": "*/*"}).mimetype == "image/jpeg"


def test_exif_rotated_photo_is_answered_upright(client):
    upright = Image.open(io.BytesIO(image_bytes("baby-bear.jpg")))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways stores
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=92, exif=exif)
    r = annotate(client, buf.getvalue(), threshold="0.5", format="png")
    assert r.status_code == 200
    with Image.open(io.BytesIO(r.data)) as out:
        assert out.size == upright.size != stored.size


@pytest.mark.parametrize(
    "data, fields, headers, fragment",
    [
        (b"hello, not a picture", {}, {}, "not an image"),
        (b"hello, not a picture", {}, {"Accept": "image/png"}, "not an image"),
        (None, {"format": "gif"}, {}, "format must be jpeg or png"),
        (None, {"threshold": "2"}, {}, "threshold must be a number"),
    ],
)
def test_errors_are_json_400(client, data, fields, headers, fragment):
    r = annotate(client, image_bytes("dog.jpg") if data is None else data, headers=headers, **fields)
    assert r.status_code == 400 and r.mimetype == "application/json", r.data[:200]
    assert r.get_json()["status"] == "error" and fragment in r.get_json()["message"]


def test_missing_image_is_json_400(client):
    r = client.post("/model/annotate", data={"threshold": "0.5"}, content_type="multipart/form-data")
    assert r.status_code == 400 and "missing" in r.get_json()["message"]


def test_swagger_documents_annotate(client):
    op = client.get("/swagger.json").get_json()["paths"]["/model/annotate"]["post"]
    assert set(op["produces"]) == {"image/jpeg", "image/png", "application/json"}  # JSON for the errors
    assert {p["name"] for p in op["parameters"]} == {"image", "threshold", "format"}
    assert {"200", "400", "413", "503"} <= set(op["responses"])
    assert op["responses"]["400"]["schema"]["$ref"].endswith("/Error")


PHOTOS = sorted(p.name for p in IMAGES.glob("*.jpg")) or ["dog-human.jpg"]


@pytest.mark.parametrize("name", PHOTOS)
def test_labels_on_real_photos_never_overlap_and_stay_inside(detector, name):
    """At a low threshold (0.3) the photos have several detections on one object (dog-human.jpg:
    "dog" and "person" share a box; kite.jpg: eleven): every label is drawn, none overlaps another,
    all inside the picture, on the photo as uploaded and on a thumbnail of it."""
    decoded = detector.decode(image_bytes(name))
    detections = detector.detect(decoded, 0.3)
    for size in (decoded.size, (decoded.size[0] // 4, decoded.size[1] // 4)):
        labels = layout_labels(size, detections)
        assert_valid([label.rect for label in labels], size)
        if size == decoded.size:
            assert len(labels) == len(detections), name  # room for every label at full size
