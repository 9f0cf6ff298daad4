"""Running a ``.tflite`` detection model whole, as one interpreter, to compare the engine against."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.ssd.engines.postprocess_split import POSTPROCESS_OP


def whole_model_outputs(model_file: Path, frames: list[np.ndarray], threads: int = 1) -> list[tuple[np.ndarray, ...]]:
    """(boxes, classes, scores, count) of the unsplit model for each ``[H,W,3]`` frame at the input size."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_file), num_threads=threads)
    interpreter.allocate_tensors()
    (op,) = (op for op in interpreter._get_ops_details() if op["op_name"] == POSTPROCESS_OP)
    index = interpreter.get_input_details()[0]["index"]
    results = []
    for frame in frames:
        interpreter.set_tensor(index, frame[np.newaxis])
        interpreter.invoke()
        results.append(tuple(interpreter.get_tensor(i) for i in op["outputs"]))
    return results


def engine_outputs(engine, frames: list[np.ndarray], lone: bool) -> list[tuple[np.ndarray, ...]]:
    """The same four outputs from one of ``engine``'s runners: the lone-request one or a pooled one."""
    assert engine.lone_built.wait(60), "the lone-request runner was never built"
    runner = engine._lone if lone else engine._idle.get()
    assert runner is not None
    try:
        return [runner(frame) for frame in frames]
    finally:
        if not lone:
            engine._idle.put(runner)
