"""The wire format of Open Inference Protocol v2 inference requests and responses, both as plain JSON
and with the binary tensor data extension (what tritonclient sends and expects by default).

A request body is a JSON header, optionally followed by raw tensor bytes; the header's length is then
in ``Inference-Header-Content-Length``, and each input with binary data says its byte count in
``parameters.binary_data_size``, in the order the inputs are listed. Binary data is little-endian and
row-major; a BYTES element is a 4-byte little-endian length followed by its bytes.

Everything here is validated before anything is allocated from it: shapes are checked against the
limits the caller gives, so a tensor that declares a huge shape is refused from its header.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InvalidInput

HEADER_LENGTH = "Inference-Header-Content-Length"
#: The datatypes this codec writes, as numpy dtypes (little-endian, as the extension requires).
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {"UINT8": np.dtype("<u1"), "INT32": np.dtype("<i4"), "FP32": np.dtype("<f4")}
MAX_INPUTS = 8
MAX_RANK = 8


@dataclass(frozen=True)
class InputTensor:
    """One input as sent: exactly one of ``data`` (the JSON value) and ``raw`` (its binary bytes) is set."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Any = None
    raw: bytes | None = None

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class InferenceRequest:
    id: str | None
    inputs: tuple[InputTensor, ...]
    #: Requested outputs: name -> binary (True/False) or None (follow ``binary_data_output``); None: all.
    outputs: dict[str, bool | None] | None
    parameters: dict[str, Any]

    @property
    def binary_output(self) -> bool:
        return bool(self.parameters.get("binary_data_output", False))

    def wants_binary(self, name: str) -> bool:
        own = (self.outputs or {}).get(name)
        return self.binary_output if own is None else own


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false")
    return value


def _count(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidInput(f"{what} must be a non-negative integer")
    return value


def parse_request(body: bytes, header_length: str | None) -> InferenceRequest:
    """Split ``body`` into its JSON header and binary part, and validate the header's structure."""
    binary = b""
    if header_length is not None:
        text = header_length.strip()
        if not text.isdigit() or int(text) > len(body):
            raise InvalidInput(f"{HEADER_LENGTH} must be an integer no larger than the body ({len(body)} bytes)")
        length = int(text)
        if length == 0:
            raise InvalidInput(f"raw binary requests ({HEADER_LENGTH}: 0) are not supported: send a JSON header")
        body, binary = body[:length], body[length:]
    try:
        header = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidInput(f"the inference request is not valid JSON: {str(exc)[:120]}") from None
    header = _object(header, "the inference request")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    parameters = _object(header.get("parameters", {}), "'parameters'")
    if "binary_data_output" in parameters:
        _bool(parameters["binary_data_output"], "parameters.binary_data_output")
    raw_inputs = header.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    if len(raw_inputs) > MAX_INPUTS:
        raise InvalidInput(f"at most {MAX_INPUTS} inputs")
    inputs, offset = [], 0
    for index, item in enumerate(raw_inputs):
        tensor, size = _input(_object(item, f"inputs[{index}]"), index)
        if size is not None:
            if offset + size > len(binary):
                raise InvalidInput(
                    f"input {tensor.name!r} declares {size} bytes of binary data, "
                    f"but only {len(binary) - offset} follow the JSON header"
                )
            tensor = InputTensor(tensor.name, tensor.datatype, tensor.shape, raw=binary[offset : offset + size])
            offset += size
        inputs.append(tensor)
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} bytes after the JSON header belong to no input")
    return InferenceRequest(request_id, tuple(inputs), _outputs(header.get("outputs")), parameters)


def _input(item: dict[str, Any], index: int) -> tuple[InputTensor, int | None]:
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise InvalidInput(f"inputs[{index}] needs a string 'name' and 'datatype'")
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise InvalidInput(f"input {name[:40]!r}: 'shape' must be a list of at most {MAX_RANK} integers")
    dims = tuple(_count(dim, f"input {name[:40]!r}: each dimension") for dim in shape)
    parameters = _object(item.get("parameters", {}), f"input {name[:40]!r}: 'parameters'")
    size = parameters.get("binary_data_size")
    if size is not None:
        size = _count(size, f"input {name[:40]!r}: binary_data_size")
        if "data" in item:
            raise InvalidInput(f"input {name[:40]!r} has both 'data' and binary_data_size")
    elif "data" not in item:
        raise InvalidInput(f"input {name[:40]!r} has neither 'data' nor parameters.binary_data_size")
    return InputTensor(name, datatype, dims, data=item.get("data")), size


def _outputs(raw: Any) -> dict[str, bool | None] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > MAX_INPUTS:
        raise InvalidInput(f"'outputs' must be a list of at most {MAX_INPUTS} requested outputs")
    wanted: dict[str, bool | None] = {}
    for index, item in enumerate(raw):
        item = _object(item, f"outputs[{index}]")
        name = item.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"outputs[{index}] needs a string 'name'")
        parameters = _object(item.get("parameters", {}), f"output {name[:40]!r}: 'parameters'")
        binary = parameters.get("binary_data")
        wanted[name] = None if binary is None else _bool(binary, f"output {name[:40]!r}: binary_data")
    return wanted


# --- one tensor's values ------------------------------------------------------------------------


def read_bytes_element(tensor: InputTensor) -> bytes:
    """The single element of a BYTES tensor of one element: raw bytes in binary, base64 text in JSON."""
    if tensor.elements != 1:
        raise InvalidInput(f"input {tensor.name!r} must hold exactly one element (shape [1]), got {list(tensor.shape)}")
    if tensor.raw is not None:
        raw = tensor.raw
        if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != len(raw) - 4:
            raise InvalidInput(
                f"input {tensor.name!r}: binary BYTES data must be one 4-byte little-endian length plus that many bytes"
            )
        return raw[4:]
    data = tensor.data
    while isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, str):
        raise InvalidInput(f"input {tensor.name!r}: JSON data must be one base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"input {tensor.name!r}: JSON data must be one base64 string") from None


def read_uint8(tensor: InputTensor) -> np.ndarray:
    """A UINT8 tensor's values as an array of its shape. The caller has bounded the shape already."""
    expected = tensor.elements
    if tensor.raw is not None:
        if len(tensor.raw) != expected:
            raise InvalidInput(
                f"input {tensor.name!r}: shape {list(tensor.shape)} needs {expected} bytes, got {len(tensor.raw)}"
            )
        return np.frombuffer(tensor.raw, dtype=np.uint8).reshape(tensor.shape)
    if not isinstance(tensor.data, list):
        raise InvalidInput(f"input {tensor.name!r}: 'data' must be a list")
    if len(tensor.data) not in (expected, tensor.shape[0]):  # flat, or nested by the shape: cheap to tell
        raise InvalidInput(
            f"input {tensor.name!r}: shape {list(tensor.shape)} needs {expected} values, got a list of {len(tensor.data)}"
        )
    try:
        values = np.asarray(tensor.data)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(
            f"input {tensor.name!r}: 'data' must be a flat or regularly nested list of numbers"
        ) from None
    if values.ndim > 1 and values.shape != tensor.shape:
        raise InvalidInput(
            f"input {tensor.name!r}: nested 'data' of shape {list(values.shape)[:8]} does not match {list(tensor.shape)}"
        )
    if values.size != expected:
        raise InvalidInput(
            f"input {tensor.name!r}: shape {list(tensor.shape)} needs {expected} values, got {values.size}"
        )
    if values.dtype.kind not in "iu" or (values.size and (values.min() < 0 or values.max() > 255)):
        raise InvalidInput(f"input {tensor.name!r}: UINT8 data must be integers in 0..255")
    return values.astype(np.uint8).reshape(tensor.shape)


# --- the response --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    #: Numbers for numeric types; a 1-D object array of ``bytes`` for BYTES.
    values: np.ndarray


def _raw(output: OutputTensor) -> bytes:
    if output.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(item)) + item for item in output.values.ravel())
    return output.values.astype(NUMPY_DTYPES[output.datatype]).tobytes()


def _json_data(output: OutputTensor) -> list[Any]:
    if output.datatype == "BYTES":
        return [item.decode("utf-8", "replace") for item in output.values.ravel()]
    return output.values.astype(NUMPY_DTYPES[output.datatype]).ravel().tolist()


def encode_response(
    header: dict[str, Any], outputs: list[OutputTensor], request: InferenceRequest
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: plain JSON, or the JSON header plus binary outputs."""
    entries, blobs = [], []
    for output in outputs:
        entry: dict[str, Any] = {"name": output.name, "datatype": output.datatype, "shape": list(output.values.shape)}
        if request.wants_binary(output.name):
            blob = _raw(output)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _json_data(output)
        entries.append(entry)
    text = json.dumps({**header, "outputs": entries}, separators=(",", ":")).encode()
    if not blobs:
        return text, {"Content-Type": "application/json"}
    return text + b"".join(blobs), {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(text))}
