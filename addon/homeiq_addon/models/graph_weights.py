"""Reading the weights of an OpenVINO graph, for the rewrites made at load (label_head.py,
cross_attention.py)."""

from __future__ import annotations

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


def evaluate_weight(output: ov.Output) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The FP32 value of a weight subgraph, evaluated by OpenVINO (a compressed weight is
    decompressed as the plugin would). FP32 whatever the CPU's default inference precision (bf16
    on AMX): a weight taken out of its graph must stay exact."""
    compiled = runtime.core().compile_model(
        ov.Model([ops.convert(output, "f32")], [], "weight"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    return np.asarray(compiled.create_infer_request().infer({})[0], dtype=np.float32).copy()
