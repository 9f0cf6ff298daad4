"""Cutting a detection ``.tflite`` into its network and its ``TFLite_Detection_PostProcess`` op.

Why: LiteRT gives one thread count to a whole interpreter, and with two or more threads the op's
per-class NMS drops whole classes (TensorFlow issue #56058; the int8 model lost every car on
dog.jpg). Cut in two, the network can run on several cores for a lone request while the NMS
always runs on one. The cut is made in memory from the verified file, the same way every time:
nothing new is written, so there is nothing more to record or re-verify. The two halves give the
same outputs as the whole model, bit for bit (tests/integration/test_lone_request.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from core.errors import ModelLoadError

POSTPROCESS_OP = "TFLite_Detection_PostProcess"


@dataclass(frozen=True)
class SplitModel:
    """The two halves as model bytes; ``network``'s outputs are ``postprocess``'s inputs, in order."""

    network: bytes
    postprocess: bytes


def split_postprocess(model: bytes, name: str = "model") -> SplitModel:
    """Cut ``model`` before its post-processing op.

    The op must be the last step: its outputs are model outputs and nothing reads them; its
    third input (the anchors) must be a constant. Anything else is a :class:`ModelLoadError`
    that says what was found.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    try:
        whole = schema.ModelT.InitFromPackedBuf(model, 0)
    except Exception as exc:  # noqa: BLE001 - a file the flatbuffer reader cannot parse, whatever it raises
        raise ModelLoadError(f"{name} is not a TFLite model: {exc}") from None
    if not whole.subgraphs:
        raise ModelLoadError(f"{name} has no subgraph")
    if any(buffer.offset for buffer in whole.buffers or []):  # weights after the flatbuffer (models over 2 GB)
        raise ModelLoadError(f"{name} keeps its weights outside the flatbuffer, which this engine does not read")
    graph = whole.subgraphs[0]
    codes = [_code_name(code) for code in whole.operatorCodes or []]
    ops = graph.operators or []
    found = [i for i, op in enumerate(ops) if codes[op.opcodeIndex] == POSTPROCESS_OP]
    if not found:
        raise ModelLoadError(f"{name} is not an SSD detection model: it has no {POSTPROCESS_OP} op")
    if len(found) > 1:
        raise ModelLoadError(f"{name} has {len(found)} {POSTPROCESS_OP} ops; an SSD detection model has one")
    post = ops[found[0]]
    read_later = {t for op in ops if op is not post for t in op.inputs}
    if len(post.inputs) != 3 or set(post.outputs) & read_later or not set(post.outputs) <= set(graph.outputs):
        raise ModelLoadError(f"{name}: its {POSTPROCESS_OP} op is not the model's last step")
    anchors = graph.tensors[post.inputs[2]]
    if _data(whole, anchors.buffer) is None:
        raise ModelLoadError(f"{name}: the anchors of its {POSTPROCESS_OP} op are not a constant")

    network = copy.copy(whole)  # shares the weight buffers: only the subgraph's op list changes
    network_graph = copy.copy(graph)
    network_graph.operators = [op for op in ops if op is not post]
    network_graph.outputs = list(post.inputs[:2])
    network.subgraphs = [network_graph, *whole.subgraphs[1:]]
    network.signatureDefs = None  # the whole model's signature names outputs the network no longer has

    tail = schema.ModelT()
    tail.version = whole.version
    tail.operatorCodes = [whole.operatorCodes[post.opcodeIndex]]
    tail.buffers = [schema.BufferT()]  # buffer 0: "no data", as the schema requires
    tail_graph = schema.SubGraphT()
    tail_graph.tensors = []
    index: dict[int, int] = {}
    for old in (*post.inputs, *post.outputs):
        if old in index:
            continue
        tensor = copy.copy(graph.tensors[old])
        data = _data(whole, tensor.buffer)
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = data
            tail.buffers.append(buffer)
            tensor.buffer = len(tail.buffers) - 1
        else:
            tensor.buffer = 0
        index[old] = len(tail_graph.tensors)
        tail_graph.tensors.append(tensor)
    op = copy.copy(post)
    op.opcodeIndex = 0
    op.inputs = [index[t] for t in post.inputs]
    op.outputs = [index[t] for t in post.outputs]
    tail_graph.operators = [op]
    tail_graph.inputs = op.inputs[:2]
    tail_graph.outputs = list(op.outputs)
    tail.subgraphs = [tail_graph]
    return SplitModel(network=_pack(flatbuffers, network, len(model)), postprocess=_pack(flatbuffers, tail, 1 << 16))


def _code_name(code) -> str:
    custom = code.customCode
    return custom.decode() if isinstance(custom, bytes) else str(custom or "")


def _data(model, buffer: int):
    """The constant data of ``buffer``, or None for a tensor computed at run time."""
    data = model.buffers[buffer].data if 0 < buffer < len(model.buffers) else None
    return data if data is not None and len(data) else None


def _pack(flatbuffers, model, size: int) -> bytes:
    builder = flatbuffers.Builder(size + (1 << 16))  # room for it all: growing copies the buffer each time
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
