"""The checked-in catalog loads, carries the cited pins, and bad catalogs fail with clear errors."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from config import Settings
from core.artifacts.catalog import DEFAULT_CATALOG, CatalogError, load_catalog
from core.artifacts.integrity import validate_pin

RAW = json.loads(DEFAULT_CATALOG.read_text(encoding="utf-8"))


def test_catalog_lists_the_four_models_and_the_default():
    catalog = load_catalog()
    assert catalog.names == ["ssd_mobilenet_v1", "ssd_mobilenet_v1_quant", "ssd_mobilenet_v2", "ssdlite_mobilenet_v2"]
    assert Settings().model in catalog.names


@pytest.mark.parametrize(
    "name, fmt, backends, archive, files",
    [
        (
            "ssd_mobilenet_v1",
            "frozen_graph",
            ("tf", "tflite"),
            {"sha1": "6157ddb6da55db2da89dd561eceb7f944928e317"},
            {
                "ssd_mobilenet_v1_coco_2017_11_17/frozen_inference_graph.pb": {
                    "sha1": "9e4bcdd98f4c6572747679e4ce570de4f03a70e2",
                    "md5": "1be3ed58a65ced5936b1bff3fc09d9b1",
                }
            },
        ),
        (
            "ssd_mobilenet_v2",
            "frozen_graph",
            ("tf", "tflite"),
            {"sha1": "69c93d29e292bc9682396a5c78355b1dfe481b61"},
            {
                "ssd_mobilenet_v2_coco_2018_03_29/frozen_inference_graph.pb": {
                    "sha1": "35d571ac314f1d32ae678a857f87cc0ef6b220e8"
                }
            },
        ),
        (
            "ssd_mobilenet_v1_quant",
            "tflite",
            ("tflite",),
            {"sha256": "a809cd290b4d6a2e8a9d5dad076e0bd695b8091974e0eed1052b480b2f21b6dc"},
            {
                "detect.tflite": {"sha256": "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13"},
                "labelmap.txt": {"sha256": "c7e79c855f73cbba9f33d649d60e1676eb0a974021a41696d1ac0d4b7f7e0211"},
            },
        ),
    ],
)
def test_published_pins_are_the_cited_ones(name, fmt, backends, archive, files):
    entry = load_catalog().get(name)
    assert (entry.format, entry.backends, dict(entry.archive)) == (fmt, backends, archive)
    assert {k: dict(v) for k, v in entry.files.items()} == files
    assert entry.url and entry.url.startswith(("http://", "https://"))
    assert entry.license == "Apache-2.0" and entry.references


def test_ssdlite_has_no_public_url_but_pins_its_archive_and_files():
    entry = load_catalog().get("ssdlite_mobilenet_v2")
    assert entry.url is None and "MODEL_URL" in (entry.note or "")
    assert entry.archive == {"sha256": "6165257e55960d20629acec1c55fa11a8f8f81fd8559ccd4f8f59269cdebfbb8"}
    assert {
        "ssdlite_mobilenet_v2_coco/frozen_inference_graph.pb",
        "ssdlite_mobilenet_v2_coco/saved_model/saved_model.pb",
    } <= set(entry.files)
    assert entry.model_file == "ssdlite_mobilenet_v2_coco/frozen_inference_graph.pb"


def test_labels_are_coco_or_a_kept_file():
    catalog = load_catalog()
    assert catalog.get("ssd_mobilenet_v1").labels == "coco"
    assert catalog.get("ssd_mobilenet_v1_quant").labels == "labelmap.txt"


def test_unknown_model_error_lists_known_names():
    with pytest.raises(
        CatalogError, match=r"unknown model 'yolo'; known models: ssd_mobilenet_v1, ssd_mobilenet_v1_quant"
    ):
        load_catalog().get("yolo")


def _edit(entry: dict, key: str, value: object) -> None:
    if value is _DELETE:
        del entry[key]
    else:
        entry[key] = value


_DELETE = object()
_V1_GRAPH = "ssd_mobilenet_v1_coco_2017_11_17/frozen_inference_graph.pb"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("format", "onnx", "format 'onnx' is not one of"),
        ("url", "ftp://example.com/m.tar.gz", "url must be an http(s) URL or null"),
        ("archive", {"crc32": "00000000"}, "unknown digest algorithm 'crc32'"),
        ("archive", {"sha1": "abc"}, "sha1 must be 40 lowercase hex digits"),
        ("archive", {"sha1": "6157DDB6DA55DB2DA89DD561ECEB7F944928E317"}, "sha1 must be 40 lowercase hex digits"),
        ("archive", {"md5": "1be3ed58a65ced5936b1bff3fc09d9b1"}, "an md5 pin needs a stronger companion"),
        ("archive", {}, "digests must be a non-empty object"),
        ("files", {"../evil.pb": {"sha1": "9e4bcdd98f4c6572747679e4ce570de4f03a70e2"}}, "is not a safe relative path"),
        (
            "files",
            {"/etc/evil.pb": {"sha1": "9e4bcdd98f4c6572747679e4ce570de4f03a70e2"}},
            "is not a safe relative path",
        ),
        ("model_file", "other.pb", "model_file 'other.pb' is not among its files"),
        ("labels", "imagenet", "labels must be 'coco' or one of its files"),
        ("backends", ["onnxruntime"], "backends must be a non-empty subset"),
        ("references", [], "references must be a non-empty list"),
        ("license", _DELETE, "missing keys ['license']"),
        ("checksum", "x", "unknown keys ['checksum']"),
        ("name", "SSD v1", "must be lowercase letters"),
    ],
)
def test_invalid_entries_are_rejected_with_the_reason(tmp_path: Path, key, value, message):
    raw = copy.deepcopy(RAW)
    _edit(raw["models"][0], key, value)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(CatalogError, match=r"models\[0\]: .*" + re.escape(message)):
        load_catalog(path)


def test_duplicate_names_and_bad_files_are_rejected(tmp_path: Path):
    raw = copy.deepcopy(RAW)
    raw["models"].append(copy.deepcopy(raw["models"][0]))
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(CatalogError, match="duplicate model name 'ssd_mobilenet_v1'"):
        load_catalog(path)
    path.write_text("{not json")
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(path)
    path.write_text(json.dumps({"models": []}))
    with pytest.raises(CatalogError, match='"schema": 1'):
        load_catalog(path)


def test_validate_pin_keeps_every_algorithm():
    pin = {"sha1": "9e4bcdd98f4c6572747679e4ce570de4f03a70e2", "md5": "1be3ed58a65ced5936b1bff3fc09d9b1"}
    assert validate_pin(pin, "x") == pin
    assert load_catalog().get("ssd_mobilenet_v1").files[_V1_GRAPH] == pin


def test_catalog_backends_follow_the_formats():
    """A frozen graph runs on tf and, once core.optimize converted it, on tflite; a .tflite only on
    tflite (the registry enforces the list: tests/integration/test_registry.py)."""
    for entry in load_catalog().entries.values():
        expected = ("tflite",) if entry.format == "tflite" else ("tf", "tflite")
        assert entry.backends == expected, entry.name


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("file:///srv/private/models/ssdlite_mobilenet_v2_coco.tar.gz", "file: ssdlite_mobilenet_v2_coco.tar.gz"),
        ("file:///srv/My%20Models/model.zip", "file: model.zip"),
        ("https://user:s3cret@mirror.example/m/model.tar.gz?token=abc#x", "https://mirror.example/m/model.tar.gz"),
        ("http://mirror.example:8080/model.tar.gz", "http://mirror.example:8080/model.tar.gz"),
    ],
)
def test_public_url_hides_local_paths_and_credentials(url, shown):
    from core.artifacts.download import public_url

    assert public_url(url) == shown
