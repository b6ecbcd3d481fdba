"""A T5 decoder's cross-attention reading the encoder states directly (cross_attention.py), on
real OpenVINO graphs: hand-built attention checked against numpy, and the converters' decoders
checked against themselves before the rewrite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from homeiq_addon.models import runtime
from homeiq_addon.models.classifier import OVClassifier
from homeiq_addon.models.cross_attention import ENCODER_STATES, absorb_cross_attention
from homeiq_addon.models.loaded import LoadOptions
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.weight_int8 import compress_weights

D_MODEL, HEADS, D_KV = 12, 3, 4
INNER = HEADS * D_KV


def _run(model: ov.Model, feed: dict[str, np.ndarray]) -> np.ndarray:
    """FP32 throughout. Dynamic quantization off: on CPUs with VNNI or AMX the plugin quantizes the
    activations of weight-compressed matmuls on the fly, which the rewritten graph's folded (FP32)
    cross-attention no longer goes through, so the two graphs would differ by that rounding
    (0.3 in a log-probability on an AMX Xeon) and not by the rewrite."""
    config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}
    compiled = runtime.core().compile_model(model, "CPU", config)
    return np.asarray(compiled.create_infer_request().infer(feed)[compiled.outputs[0]])


def _named(name: str, shape: list[int], dtype: ov.Type) -> ov.Node:
    param = ops.parameter(shape, dtype, name=name)
    param.output(0).get_tensor().set_names({name})
    return param


def _heads(value: ov.Output, *, twice: bool) -> ov.Output:
    """(batch, tokens, inner) -> (batch, heads, tokens, d_kv): one transpose, or two as the
    PyTorch frontend leaves them for keys (``k.transpose(3, 2)`` undone by the attention)."""
    split = ops.reshape(value, ops.constant(np.array([0, -1, HEADS, D_KV], dtype=np.int64)), True)
    if not twice:
        return ops.transpose(split, ops.constant(np.array([0, 2, 1, 3], dtype=np.int64))).output(0)
    turned = ops.transpose(split, ops.constant(np.array([0, 2, 3, 1], dtype=np.int64)))
    return ops.transpose(turned, ops.constant(np.array([0, 1, 3, 2], dtype=np.int64))).output(0)


class _Weights:
    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.q, self.k, self.v = (rng.normal(size=(INNER, D_MODEL)).astype(np.float32) for _ in range(3))


def _projection(x: ov.Output, weight: np.ndarray, *, transpose_b: bool) -> ov.Output:
    """``x @ weight.T``, the weight stored as (inner, d_model) with transpose_b, else transposed."""
    stored = weight if transpose_b else np.ascontiguousarray(weight.T)
    return ops.matmul(x, ops.constant(stored), False, transpose_b).output(0)


def _attention_graph(
    w: _Weights,
    *,
    transpose_b: bool = True,
    scale: float | None = None,
    twice: bool = False,
    bias: bool = False,
) -> ov.Model:
    """decoder states (batch, steps, d_model) attending over the encoder states with their padding
    mask, as a T5 decoder's EncDecAttention (output before the ``o`` projection)."""
    decoder = _named("decoder_states", [-1, -1, D_MODEL], ov.Type.f32)
    states = _named(ENCODER_STATES, [-1, -1, D_MODEL], ov.Type.f32)
    mask = _named("encoder_attention_mask", [-1, -1], ov.Type.i64)
    query = _heads(_projection(decoder.output(0), w.q, transpose_b=True), twice=False)
    keys_in = _projection(states.output(0), w.k, transpose_b=transpose_b)
    if bias:
        keys_in = ops.add(keys_in, ops.constant(np.ones(INNER, dtype=np.float32))).output(0)
    keys = _heads(keys_in, twice=twice)
    values = _heads(_projection(states.output(0), w.v, transpose_b=transpose_b), twice=False)
    padding = ops.subtract(ops.constant(np.float32(1.0)), ops.convert(mask, ov.Type.f32))
    additive = ops.unsqueeze(
        ops.multiply(padding, ops.constant(np.float32(-1e9))), ops.constant(np.array([1, 2], np.int64))
    )
    inputs = [query, keys, values, additive.output(0)]
    if scale is not None:
        inputs.append(ops.constant(np.float32(scale)).output(0))
    attention = ops.scaled_dot_product_attention(*inputs, causal=False)
    return ov.Model([attention], [decoder, states, mask], "cross-attention")


def _numpy_attention(w: _Weights, feed: dict[str, np.ndarray], scale: float) -> np.ndarray:
    def heads(x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], x.shape[1], HEADS, D_KV).transpose(0, 2, 1, 3)

    q = heads(feed["decoder_states"] @ w.q.T)
    k = heads(feed[ENCODER_STATES] @ w.k.T)
    v = heads(feed[ENCODER_STATES] @ w.v.T)
    padding = (1 - feed["encoder_attention_mask"])[:, None, None, :]
    scores = q @ k.transpose(0, 1, 3, 2) * scale + padding * -1e9
    p = np.exp(scores - scores.max(-1, keepdims=True))
    return np.asarray((p / p.sum(-1, keepdims=True)) @ v)


def _feed(batch: int, steps: int, tokens: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, tokens), dtype=np.int64)
    mask[0, tokens // 2 :] = 0  # a padded prompt: its padding must stay out of the attention
    return {
        "decoder_states": rng.normal(size=(batch, steps, D_MODEL)).astype(np.float32),
        ENCODER_STATES: rng.normal(size=(batch, tokens, D_MODEL)).astype(np.float32),
        "encoder_attention_mask": mask,
    }


def _projects_the_states(model: ov.Model) -> bool:
    """Whether a MatMul still multiplies the encoder states by a weight."""
    return any(
        node.get_type_name() == "MatMul"
        and ENCODER_STATES in node.input_value(0).get_names()
        and node.input_value(1).get_node().get_type_name() != "Parameter"
        and len(node.input_value(1).get_partial_shape()) == 2
        for node in model.get_ops()
    )


@pytest.mark.parametrize(
    ("transpose_b", "scale", "twice"), [(True, 1.0, False), (False, None, True), (True, 0.3, True)]
)
def test_the_rewritten_attention_is_the_attention(
    transpose_b: bool, scale: float | None, twice: bool
) -> None:
    w = _Weights(0)
    model = _attention_graph(w, transpose_b=transpose_b, scale=scale, twice=twice)
    assert _projects_the_states(model)

    assert absorb_cross_attention(model) == 1

    assert not _projects_the_states(model)
    for batch, steps, tokens in ((3, 1, 7), (2, 3, 5)):
        feed = _feed(batch, steps, tokens)
        expected = _numpy_attention(w, feed, 1 / np.sqrt(D_KV) if scale is None else scale)
        np.testing.assert_allclose(_run(model, feed), expected, rtol=1e-4, atol=1e-5)


def test_attention_of_another_kind_is_left_as_it_is() -> None:
    w = _Weights(1)
    feed = _feed(2, 1, 6)
    with_bias = _attention_graph(w, bias=True)
    before = _run(with_bias, feed)
    assert absorb_cross_attention(with_bias) == 0  # keys with a bias: not a plain projection
    np.testing.assert_array_equal(_run(with_bias, feed), before)

    model = _attention_graph(w)
    model.get_parameters()[1].output(0).get_tensor().set_names({"memory"})
    assert absorb_cross_attention(model) == 0  # no encoder states input
    assert _projects_the_states(_attention_graph(w))


def _decoder_feed(batch: int, steps: int, tokens: int, width: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, tokens), dtype=np.int64)
    mask[1, 3:] = 0
    return {
        "decoder_input_ids": rng.integers(0, 50, size=(batch, steps), dtype=np.int64),
        ENCODER_STATES: rng.normal(size=(batch, tokens, width)).astype(np.float32),
        "encoder_attention_mask": mask,
    }


@pytest.mark.parametrize("weights", ["fp32", "int8w"])
def test_our_converted_decoder_answers_the_same(fp32_data_dir: Path, weights: str) -> None:
    """The converter's flan-t5-shaped decoder, FP32 and with weight-only INT8 (as the int8w cache
    entry holds it, weight_int8.py): every layer rewritten, the same log-probabilities for one
    decoder step and for several (the multi-token labels' teacher forcing)."""
    (xml,) = (fp32_data_dir / "models" / "classifier").glob("*/*-fp32/openvino_decoder_model.xml")
    config = json.loads((xml.parent / "config.json").read_text())
    original = runtime.core().read_model(xml)
    if weights == "int8w":
        assert compress_weights(original) > 0
    rewritten = original.clone()

    assert absorb_cross_attention(rewritten) == config["num_decoder_layers"]

    assert _projects_the_states(original) and not _projects_the_states(rewritten)
    for batch, steps, tokens in ((4, 1, 9), (3, 3, 6)):
        feed = _decoder_feed(batch, steps, tokens, config["d_model"], seed=steps)
        np.testing.assert_allclose(_run(rewritten, feed), _run(original, feed), rtol=1e-4, atol=1e-4)


def test_the_fp16_classifier_keeps_the_decoders_own_projections(fp32_data_dir: Path) -> None:
    """ARM's FP16 candidate (f16 inference): oneDNN on ARM has no f16 kernel for the absorbed
    attention's weight-broadcasting matrix products, so in f16 the decoder is not rewritten; in
    f32 it is. Both answer alike (here on x86, where f16 runs wherever the CPU computes it)."""
    (entry,) = (fp32_data_dir / "models" / "classifier").glob("*/*-fp32")
    texts = pattern_texts(4, seed=5)
    answers = {}
    for hint in ("f32", "f16"):
        options = LoadOptions(threads=2, warm=False, inference_precision=hint)
        classifier = OVClassifier(entry, "tiny", options)
        assert classifier.absorbed_layers == (0 if hint == "f16" else 2)
        answers[hint] = [(c.category_scores, c.priority_scores) for c in classifier.classify(texts)]
    for f32, f16 in zip(answers["f32"], answers["f16"], strict=True):
        for ref, got in zip(f32, f16, strict=True):
            assert got.keys() == ref.keys()
            np.testing.assert_allclose(list(got.values()), list(ref.values()), atol=2e-2)
