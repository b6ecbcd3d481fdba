"""Reading an OpenVINO graph's inputs and weights, for the rewrites made at load (packing.py,
label_head.py, cross_attention.py), and how much memory a compiled model's weights hold
(precision.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov
from openvino import opset13 as ops

from . import runtime


def parameter(model: ov.Model, name: str) -> ov.Node | None:
    """The input of ``model`` whose tensor is called ``name``, if any."""
    return next((p for p in model.get_parameters() if name in p.output(0).get_names()), None)


def constant_values(value: ov.Output) -> npt.NDArray[np.generic] | None:
    """The flattened data of a constant, None for anything computed."""
    node = value.get_node()
    return np.asarray(node.get_data()).reshape(-1) if node.get_type_name() == "Constant" else None


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


def held_weight_bytes(compiled: ov.CompiledModel) -> int:
    """The bytes of the weights ``compiled`` holds, as the device compiled them (an INT8 weight
    counts one byte, a BF16 one two): what a precision's memory differs by.

    Lookup tables (word embeddings) count too, which makes this an upper bound: a table the CPU
    plugin reads straight from the mapped model file is paged out after load
    (runtime.release_file_pages), while one it had to compute (a statically quantized graph's)
    stays in memory. Measured on a Zen 1 EPYC, each role alone after load and warm-up: MiniLM
    FP32 against weight-only INT8, 106 against 78 MB (counted: 90 against 23 MB); flan-t5-small's
    classifier 297 against 191 MB (308 against 87 MB); bge-reranker-base's architecture, whose
    table is out of the graph (word_table.py), 423 against 174 MB for static INT8 (344 against
    87 MB).
    """
    total = 0
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if op.get_input_size() or "layerType" not in info or info["layerType"].astype(str) != "Const":
            continue
        shape = op.get_output_partial_shape(0)
        if shape.is_static and len(shape) >= 2:
            total += math.prod(shape.to_shape()) * op.get_output_element_type(0).size
    return total
