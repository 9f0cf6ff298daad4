"""Request ids and the JSON log format."""

from __future__ import annotations

import json
import logging
import re

import pytest

from api.middleware.request_log import JsonFormatter, request_id_from


@pytest.mark.parametrize("incoming", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:1.2_3", "x" * 128])
def test_safe_incoming_ids_are_kept(incoming: str) -> None:
    assert request_id_from(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "x" * 129, "a b", "a\r\nSet-Cookie: x=1", "<script>", "\u00e9t\u00e9"])
def test_unsafe_or_missing_ids_are_replaced_by_a_uuid(incoming) -> None:
    generated = request_id_from(incoming)
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert generated != request_id_from(incoming)  # fresh each time


def test_json_formatter_writes_one_parseable_line_with_the_fields() -> None:
    record = logging.LogRecord("request", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"request_id": "abc", "status": 200, "path": '/weird\n"path"'}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "request" and entry["message"] == "request"
    assert entry["request_id"] == "abc" and entry["status"] == 200 and entry["path"] == '/weird\n"path"'
    assert entry["time"].endswith("+00:00")
