"""Weight-only INT8 with OpenVINO alone: every weight matrix and lookup table of a graph stored as
unsigned 8-bit integers with a zero point and a scale per output channel (asymmetric, as nncf's
``compress_weights(mode=INT8_ASYM)`` writes them), decompressed by the CPU plugin as it runs.

The subgraph written for each weight is nncf's, so the CPU plugin fuses it into its matrix
multiplications the same way (and quantizes their activations on the fly where the CPU has
VNNI or AMX): ``Constant(u8) -> Convert(f16) -> Subtract(zero point) -> Multiply(scale, f16) ->
Convert(f32)``. Needing no nncf, it serves the default add-on image, which has only OpenVINO.

What is compressed: a MatMul's constant operand (its channels are the axes it is not summed
over) and a Gather's constant table looked up along axis 0 (a scale per row). Weights of rank
below 2, and a constant two consumers would cut along different axes, stay as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov
from openvino import opset13 as ops

LEVELS = 256  # unsigned 8-bit
_FLOATS = (ov.Type.f32, ov.Type.f16, ov.Type.bf16)


def weight_source(value: ov.Output) -> ov.Output | None:
    """The float constant behind ``value`` (through one Convert, for an FP16-stored weight)."""
    node = value.get_node()
    if node.get_type_name() == "Convert":
        value = node.input_value(0)
        node = value.get_node()
    if node.get_type_name() != "Constant" or value.get_element_type() not in _FLOATS:
        return None
    return value if len(value.get_partial_shape()) >= 2 else None


def _reduction_axis(node: ov.Node, port: int) -> int | None:
    """The axis of the constant at ``port`` of ``node`` that is summed over (MatMul) or spans a
    looked-up row (Gather), counted from the end; None when the node's use is not a weight's."""
    kind = node.get_type_name()
    if kind == "MatMul":
        attributes = node.get_attributes()
        if port == 1:
            return -1 if attributes["transpose_b"] else -2
        return -2 if attributes["transpose_a"] else -1
    if kind == "Gather" and port == 0:
        axis = node.input_value(2).get_node()
        if axis.get_type_name() == "Constant" and int(np.asarray(axis.get_data()).reshape(-1)[0]) == 0:
            return -1 if len(node.input_value(0).get_partial_shape()) == 2 else None
    return None


def quantize(
    weight: npt.NDArray[np.floating[Any]], axis: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """``weight`` as (codes, zero points, scales), one zero point and scale per channel: the
    channel's range, widened to include 0, cut into 255 steps."""
    w = np.asarray(weight, dtype=np.float32)
    low = np.minimum(w.min(axis=axis, keepdims=True), 0.0)
    high = np.maximum(w.max(axis=axis, keepdims=True), 0.0)
    scale = ((high - low) / (LEVELS - 1)).astype(np.float32)
    eps = np.finfo(np.float32).eps
    scale = np.where(np.abs(scale) < eps, eps, scale).astype(np.float32)
    zero_point = np.clip(np.round(-low / scale), 0, LEVELS - 1)
    codes = np.clip(np.round(w / scale) + zero_point, 0, LEVELS - 1)
    return codes.astype(np.uint8), zero_point.astype(np.uint8), scale


def _decompressed(weight: npt.NDArray[np.floating[Any]], axis: int, name: str) -> ov.Output:
    """The subgraph that gives back ``weight`` (as FP32) from its 8-bit codes."""
    codes, zero_point, scale = quantize(weight, axis)
    value = ops.convert(ops.constant(codes, name=name), ov.Type.f16)
    shift = ops.convert(ops.constant(zero_point, name=f"{name}/zero_point"), ov.Type.f16)
    value = ops.subtract(value, shift, name=f"{name}/zero_point/subtract")
    scale_const = ops.constant(scale.astype(np.float16), name=f"{name}/scale")
    value = ops.multiply(value, scale_const, name=f"{name}/int8")
    return ops.convert(value, ov.Type.f32, name=f"{name}/int8/convert").output(0)


def compress_weights(model: ov.Model) -> int:
    """Store ``model``'s weights as 8-bit integers in place; returns how many were compressed."""
    users: dict[str, tuple[ov.Output, list[ov.Input], set[int | None]]] = {}
    for node in model.get_ordered_ops():
        if node.get_type_name() == "Convert":
            continue  # looked through by weight_source from the nodes it feeds
        for port in range(node.get_input_size()):
            source = weight_source(node.input_value(port))
            if source is None:
                continue
            rank = len(source.get_partial_shape())
            axis = _reduction_axis(node, port)
            found = users.setdefault(source.get_node().get_friendly_name(), (source, [], set()))
            found[1].append(node.input(port))
            found[2].add(None if axis is None else axis % rank)
    compressed = 0
    for name, (source, inputs, axes) in users.items():
        (axis,) = axes if len(axes) == 1 else (None,)
        if axis is None:
            continue  # used as something other than a weight, or cut two ways
        replacement = _decompressed(np.asarray(source.get_node().get_data()), axis, name)
        for target in inputs:
            target.replace_source_output(replacement)
        compressed += 1
    model.validate_nodes_and_infer_types()
    return compressed
