"""The decoder's output head cut to the label tokens (label_head.py), on real OpenVINO graphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from homeiq_addon.models import runtime
from homeiq_addon.models.label_head import LABEL_LOGITS, label_logits_head

VOCAB, HIDDEN = 50, 8


def _run(model: ov.Model, feed: dict[str, np.ndarray]) -> np.ndarray:
    compiled = runtime.core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(compiled.create_infer_request().infer(feed)[compiled.outputs[0]])


def _log_softmax(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def _head(weight: ov.Output, *, transpose_b: bool, log_softmax: bool) -> tuple[ov.Model, ov.Node]:
    """hidden (batch, steps, HIDDEN) -> MatMul with ``weight`` -> [LogSoftmax] -> vocabulary scores."""
    hidden = ops.parameter([-1, -1, HIDDEN], ov.Type.f32, name="hidden")
    hidden.output(0).get_tensor().set_names({"hidden"})
    scores = ops.matmul(hidden, weight, False, transpose_b)
    out = ops.log_softmax(scores, -1) if log_softmax else scores
    out.output(0).get_tensor().set_names({"log_probs" if log_softmax else "logits"})
    return ov.Model([out], [hidden], "decoder"), hidden


@pytest.mark.parametrize("transpose_b", [True, False])
@pytest.mark.parametrize("log_softmax", [True, False])
def test_label_columns_keep_the_labels_differences(transpose_b: bool, log_softmax: bool) -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(VOCAB, HIDDEN)).astype(np.float32)
    weight = table if transpose_b else table.T.copy()
    model, _ = _head(ops.constant(weight), transpose_b=transpose_b, log_softmax=log_softmax)
    feed = {"hidden": rng.normal(size=(3, 2, HIDDEN)).astype(np.float32)}
    full = _run(model, feed)
    tokens = [7, 3, 41]

    assert label_logits_head(model, tokens)

    assert model.outputs[0].get_names() == {LABEL_LOGITS}
    rows = table[tokens] if transpose_b else table[tokens].T
    kept = [
        op
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and op.get_output_shape(0) == rows.shape
    ]
    assert len(kept) == 1 and np.array_equal(kept[0].get_data(), rows)  # the exact rows
    cut = _run(model, feed)
    assert cut.shape == (3, 2, len(tokens))
    np.testing.assert_allclose(cut, feed["hidden"] @ table[tokens].T, atol=1e-5)
    # A softmax over the labels is the same from the cut head as from the full scores.
    reference = _log_softmax(full[..., tokens])
    np.testing.assert_allclose(_log_softmax(cut), reference, atol=1e-5)


def test_a_compressed_weight_is_decompressed_once_for_the_label_rows() -> None:
    """Weight-only INT8, as nncf writes it: (u8 - zero point) * scale per row."""
    rng = np.random.default_rng(1)
    q = rng.integers(0, 255, size=(VOCAB, HIDDEN), dtype=np.uint8)
    zero_point = rng.integers(100, 150, size=(VOCAB, 1), dtype=np.uint8)
    scale = rng.uniform(0.01, 0.02, size=(VOCAB, 1)).astype(np.float32)
    shifted = ops.subtract(
        ops.convert(ops.constant(q), ov.Type.f32), ops.convert(ops.constant(zero_point), ov.Type.f32)
    )
    weight = ops.multiply(shifted, ops.constant(scale))
    model, _ = _head(weight.output(0), transpose_b=True, log_softmax=True)
    tokens = [0, 49, 12]

    assert label_logits_head(model, tokens)

    dequantized = (q.astype(np.float32) - zero_point) * scale
    hidden = rng.normal(size=(2, 1, HIDDEN)).astype(np.float32)
    np.testing.assert_allclose(_run(model, {"hidden": hidden}), hidden @ dequantized[tokens].T, atol=1e-4)
    # The decoder now holds only the label rows, not the vocabulary's matrix.
    sizes = [op.get_output_shape(0) for op in model.get_ops() if op.get_type_name() == "Constant"]
    assert [len(tokens), HIDDEN] in [list(s) for s in sizes]
    assert not any(list(s) == [VOCAB, HIDDEN] for s in sizes)


def test_a_head_of_another_kind_is_left_as_it_is() -> None:
    x = ops.parameter([-1, VOCAB], ov.Type.f32)
    relu = ov.Model([ops.relu(x)], [x], "no-matmul")
    assert not label_logits_head(relu, [1, 2])
    assert relu.outputs[0].get_partial_shape()[-1].get_length() == VOCAB

    # Scores from two activations (no constant weight) cannot be cut either.
    hidden = ops.parameter([-1, -1, HIDDEN], ov.Type.f32)
    other = ops.parameter([VOCAB, HIDDEN], ov.Type.f32)
    pairwise = ov.Model([ops.matmul(hidden, other, False, True)], [hidden, other], "pairwise")
    assert not label_logits_head(pairwise, [1, 2])
    assert pairwise.outputs[0].get_partial_shape()[-1].get_length() == VOCAB

    model, _ = _head(ops.constant(np.ones((VOCAB, HIDDEN), np.float32)), transpose_b=True, log_softmax=True)
    assert not label_logits_head(model, [])


def test_our_converted_decoder_is_cut_exactly(fp32_data_dir: Path) -> None:
    """The converter's flan-t5-shaped decoder (log-probabilities out): the label columns give the
    same label probabilities as the full vocabulary."""
    (xml,) = (fp32_data_dir / "models" / "classifier").glob("*/*-fp32/openvino_decoder_model.xml")
    model = runtime.core().read_model(xml)
    width = json.loads((xml.parent / "config.json").read_text())["d_model"]
    rng = np.random.default_rng(2)
    feed = {
        "decoder_input_ids": np.zeros((4, 1), dtype=np.int64),
        "encoder_hidden_states": rng.normal(size=(4, 6, width)).astype(np.float32),
        "encoder_attention_mask": np.ones((4, 6), dtype=np.int64),
    }
    full = _run(model, feed)
    tokens = [16, 20, 17, 21]

    assert label_logits_head(model, tokens)

    cut = _run(model, feed)
    np.testing.assert_allclose(_log_softmax(cut), _log_softmax(full[..., tokens]), atol=1e-5)
