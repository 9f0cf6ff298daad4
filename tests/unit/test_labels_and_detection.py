from pathlib import Path

import pytest

from core.errors import ModelLoadError
from core.model.detection import Detection, clip_box
from core.model.labels import read_label_map
from core.ssd.detector import COCO_LABELS


def test_coco_label_map_has_80_names_over_ids_1_to_90():
    labels = read_label_map(COCO_LABELS)
    assert len(labels) == 80
    assert min(labels) == 1 and max(labels) == 90
    assert labels[1] == "person" and labels[18] == "dog" and labels[88] == "teddy bear"
    assert labels[10] == "traffic light"  # names with spaces survive


def test_tflite_style_label_map_uses_line_numbers(tmp_path: Path):
    path = tmp_path / "labelmap.txt"
    path.write_text("???\nperson\nbicycle\n???\nmotorcycle\n")
    assert read_label_map(path) == {1: "person", 2: "bicycle", 4: "motorcycle"}


def test_missing_label_map_is_a_load_error(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="cannot read label map"):
        read_label_map(tmp_path / "nope.txt")


def test_boxes_are_clipped_to_the_image():
    assert clip_box([-0.1, 0.2, 1.3, 0.9]) == (0.0, 0.2, 1.0, 0.9)


def test_json_form_is_max_compatible():
    d = Detection(18, "dog", 0.93456789, (0.1, 0.2, 0.3, 0.4))
    assert d.to_json() == {
        "label_id": "18",
        "label": "dog",
        "probability": 0.934568,
        "detection_box": [0.1, 0.2, 0.3, 0.4],
    }
