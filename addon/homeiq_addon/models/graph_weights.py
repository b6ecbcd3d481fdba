"""Reading the weights of an OpenVINO graph, for the rewrites made at load (label_head.py,
cross_attention.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from . import runtime


def depends_on_inputs(output: ov.Output) -> bool:
    """Whether ``output`` depends on a model input (a weight never does)."""
    seen: set[str] = set()
    stack = [output.get_node()]
    while stack:
        node = stack.pop()
        if node.get_type_name() == "Parameter":
            return True
        if node.get_name() in seen:
            continue
        seen.add(node.get_name())
        stack.extend(node.input_value(i).get_node() for i in range(node.get_input_size()))
    return False


def evaluate_weights(outputs: Sequence[ov.Output]) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
    """The FP32 values of weight subgraphs, evaluated by OpenVINO in one compiled model (a
    compressed weight is decompressed as the plugin would). FP32 whatever the CPU's default
    inference precision (bf16 on AMX): a weight taken out of its graph must stay exact."""
    model = ov.Model([ops.convert(output, "f32") for output in outputs], [], "weights")
    compiled = runtime.core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    values = compiled.create_infer_request().infer({})
    return [np.asarray(values[port], dtype=np.float32).copy() for port in compiled.outputs]
