"""Absorb a T5 decoder's cross-attention projections into its query, for a few decoder steps.

The classifier runs one decoder step per prompt, yet each decoder layer's cross-attention first
projects EVERY encoder token to keys and values (two ``inner x d_model`` matrices per token and
layer): for flan-t5-small that is 8 x 2 x 384 x 512 multiply-adds per prompt token, 17 % on top
of the whole encoder. The attention only needs, per head ``h``,

    scores_h = q_h · (H Wk_h)^T = (q_h Wk_h) · H^T
    output_h = p_h · (H Wv_h^T) = (p_h · H) Wv_h^T

so each decoder step multiplies its query by the head's key matrix once (``d_kv x d_model``),
takes its scores against the encoder states ``H`` directly, and applies the value matrix to the
probability-weighted sum of ``H``: per prompt token and layer, 2 x heads x d_model multiply-adds
per decoder step instead of 2 x inner x d_model. Exact in real arithmetic; in floating point the
sums are reassociated (FP32 log-probabilities of flan-t5-small's shape agreed within 3e-4).

:func:`absorb_cross_attention` rewrites a decoder graph in place where an attention node
(OpenVINO's ``ScaledDotProductAttention``, which the PyTorch frontend produces for T5) takes its
keys and values straight from bias-free projections of the ``encoder_hidden_states`` input, split
into heads by a reshape and transposes. Anything else (a cache in the graph, biases, another
layout) is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from .graph_weights import constant_values, depends_on_inputs, evaluate_weights, parameter

ENCODER_STATES = "encoder_hidden_states"
_HEAD_SPLIT = [0, 2, 1, 3]  # (batch, tokens, heads, d_kv) -> (batch, heads, tokens, d_kv)


@dataclass(frozen=True, slots=True)
class _Projection:
    """The encoder states' projection behind an attention input, per head: (heads, d_kv, d_model)."""

    weight: ov.Output
    transpose_b: bool
    heads: int
    d_kv: int


def _constant_order(node: ov.Node) -> list[int] | None:
    values = constant_values(node.input_value(1))
    return None if values is None else [int(v) for v in values]


def _split_heads(value: ov.Output) -> tuple[ov.Node, int, int] | None:
    """The reshape that splits ``value``'s source into heads, with the heads and d_kv, when the
    transposes after it give (batch, heads, tokens, d_kv); None otherwise."""
    orders: list[list[int]] = []
    node = value.get_node()
    while node.get_type_name() == "Transpose":
        order = _constant_order(node)
        if order is None:
            return None
        orders.append(order)
        node = node.input_value(0).get_node()
    split = node.output(0).get_partial_shape()
    if node.get_type_name() != "Reshape" or len(split) != 4 or split[2:].is_dynamic:
        return None
    net = [0, 1, 2, 3]
    for order in reversed(orders):  # the transpose nearest the reshape first
        net = [net[i] for i in order]
    return (node, split[2].get_length(), split[3].get_length()) if net == _HEAD_SPLIT else None


def _projection(value: ov.Output, states: ov.Output) -> _Projection | None:
    """The bias-free projection of ``states`` that ``value`` is, split into heads as (batch, heads,
    tokens, d_kv); None when ``value`` is anything else."""
    split = _split_heads(value)
    if split is None:
        return None
    reshape, heads, d_kv = split
    matmul = reshape.input_value(0).get_node()
    if matmul.get_type_name() != "MatMul" or matmul.get_attributes().get("transpose_a"):
        return None
    weight = matmul.input_value(1)
    shape = weight.get_partial_shape()
    if matmul.input_value(0) != states or not shape.is_static or len(shape) != 2 or depends_on_inputs(weight):
        return None
    transpose_b = bool(matmul.get_attributes().get("transpose_b"))
    inner = shape[0 if transpose_b else 1].get_length()
    return _Projection(weight, transpose_b, heads, d_kv) if inner == heads * d_kv else None


def _per_head(projection: _Projection, weight: np.ndarray) -> np.ndarray:
    """The projection's ``weight`` (its value) as (heads, d_kv, d_model): head h's rows of the
    ``inner`` axis."""
    inner_first = weight if projection.transpose_b else weight.T
    return np.ascontiguousarray(inner_first.reshape(projection.heads, projection.d_kv, -1))


def _absorbed(
    attention: ov.Node, states: ov.Output, per_head_keys: np.ndarray, per_head_values: np.ndarray
) -> ov.Output:
    query = attention.input_value(0)
    hidden = ops.unsqueeze(states, ops.constant(np.int64(1)))  # (batch, 1, tokens, d_model)
    query_in_model = ops.matmul(query, ops.constant(per_head_keys), False, False)
    scores = ops.matmul(query_in_model, hidden, False, True)  # (batch, heads, steps, tokens)
    if attention.get_input_size() > 4:
        scale = attention.input_value(4)
    else:
        scale = ops.constant(np.float32(1.0 / np.sqrt(per_head_keys.shape[1])))
    scores = ops.multiply(scores, ops.convert_like(scale, scores))
    if attention.get_input_size() > 3:
        scores = ops.add(scores, attention.input_value(3))
    weights = ops.softmax(scores, -1)
    mixed = ops.matmul(weights, hidden, False, False)  # (batch, heads, steps, d_model)
    return ops.matmul(mixed, ops.constant(per_head_values), False, True).output(0)


def absorb_cross_attention(model: ov.Model) -> int:
    """Rewrite every cross-attention of ``model`` that reads projections of the encoder states
    (see the module's docstring); returns how many were rewritten (0: ``model`` untouched)."""
    states_input = parameter(model, ENCODER_STATES)
    if states_input is None:
        return 0
    states = states_input.output(0)
    found: list[tuple[ov.Node, _Projection, _Projection]] = []
    for node in model.get_ordered_ops():
        if node.get_type_name() != "ScaledDotProductAttention" or node.get_attributes().get("causal"):
            continue
        if node.get_input_size() > 3 and node.input_value(3).get_element_type() == ov.Type.boolean:
            continue
        keys = _projection(node.input_value(1), states)
        values = _projection(node.input_value(2), states)
        if keys is None or values is None or (keys.heads, keys.d_kv) != (values.heads, values.d_kv):
            continue
        found.append((node, keys, values))
    if not found:
        return 0
    # Every weight in one compiled model: one compile per weight took 0.5 s of the classifier's load.
    weights = iter(evaluate_weights([p.weight for _, keys, values in found for p in (keys, values)]))
    for node, keys, values in found:
        replacement = _absorbed(
            node, states, _per_head(keys, next(weights)), _per_head(values, next(weights))
        )
        for target in list(node.output(0).get_target_inputs()):
            target.replace_source_output(replacement)
    model.validate_nodes_and_infer_types()
    return len(found)
