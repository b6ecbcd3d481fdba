"""Weight-only INT8 written with OpenVINO alone (weight_int8.py): what it compresses, how close the
answers stay, and that it is nncf's INT8_ASYM (which the converter image used before), on real
OpenVINO graphs."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from homeiq_addon.models import runtime
from homeiq_addon.models.graph_weights import held_weight_bytes
from homeiq_addon.models.weight_int8 import compress_weights, quantize

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def _graph(seed: int = 0) -> ov.Model:
    """A small transformer-like graph: a word table looked up by id, a weight stored transposed
    (as PyTorch's Linear), one stored as it is multiplied, one stored in FP16, and a table that a
    lookup and an output projection share (tied embeddings)."""
    rng = np.random.default_rng(seed)
    ids = ops.parameter([-1, -1], np.int64, name="ids")
    words = ops.constant(rng.standard_normal((50, 32)).astype(np.float32), name="words")
    hidden = ops.gather(words, ids, np.int64(0))
    linear = ops.constant(rng.standard_normal((48, 32)).astype(np.float32), name="linear")
    hidden = ops.relu(ops.matmul(hidden, linear, False, True))
    plain = ops.constant(rng.standard_normal((48, 32)).astype(np.float32) * 0.1, name="plain")
    hidden = ops.matmul(hidden, plain, False, False)
    half = ops.constant(rng.standard_normal((32, 32)).astype(np.float16), name="half")
    hidden = ops.add(hidden, ops.matmul(hidden, ops.convert(half, ov.Type.f32), False, True))
    tied = ops.constant(rng.standard_normal((50, 32)).astype(np.float32), name="tied")
    hidden = ops.add(hidden, ops.gather(tied, ids, np.int64(0)))
    logits = ops.matmul(hidden, tied, False, True)
    return ov.Model([logits], [ids], "tiny")


def _run(model: ov.Model, ids: np.ndarray) -> np.ndarray:
    compiled = runtime.core().compile_model(model, "CPU", F32)
    return np.asarray(compiled({"ids": ids})[0])


def _codes(model: ov.Model) -> dict[str, np.ndarray]:
    return {
        op.get_friendly_name(): np.asarray(op.get_data())
        for op in model.get_ops()
        if op.get_type_name() == "Constant"
        and op.get_element_type() == ov.Type.u8
        and not op.get_friendly_name().endswith("zero_point")
    }


def test_every_weight_and_table_is_stored_in_eight_bits_and_answers_stay_close() -> None:
    ids = np.random.default_rng(1).integers(0, 50, (3, 7))
    model = _graph()
    expected = _run(model, ids)
    assert compress_weights(model) == 5
    assert set(_codes(model)) == {"words", "linear", "plain", "half", "tied"}
    floats = [
        op
        for op in model.get_ops()
        if op.get_type_name() == "Constant"
        and op.get_element_type() in (ov.Type.f32, ov.Type.f16)
        and len(op.get_output_partial_shape(0)) == 2
        and not op.get_friendly_name().endswith("/scale")  # one per channel
    ]
    assert floats == []
    got = _run(model, ids)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()
    compiled = runtime.core().compile_model(model, "CPU", F32)
    assert held_weight_bytes(compiled) < 2 * (50 * 32 * 2 + 48 * 32 * 2 + 32 * 32)  # about a byte each


def test_a_constant_used_as_something_else_than_a_weight_stays_as_it_is() -> None:
    x = ops.parameter([-1, 8], np.float32, name="x")
    shared = ops.constant(np.arange(64, dtype=np.float32).reshape(8, 8), name="shared")
    # Used as a weight and added as it is: compressing it would change the addition too.
    out = ops.add(ops.matmul(x, shared, False, True), shared)
    cut = ops.constant(np.ones((8, 8), np.float32), name="cut")
    # Summed over its last axis by one MatMul and over its first by the other: no one channel axis.
    out = ops.add(out, ops.add(ops.matmul(x, cut, False, True), ops.matmul(x, cut, False, False)))
    model = ov.Model([out], [x])
    assert compress_weights(model) == 0
    assert _codes(model) == {}


@pytest.mark.parametrize(
    "channel",
    [
        np.zeros(16, np.float32),  # all zeros: the smallest scale, every code the zero point
        np.linspace(0.5, 2.0, 16, dtype=np.float32),  # positive only: the range starts at 0
        np.linspace(-3.0, -1.0, 16, dtype=np.float32),  # negative only: the range ends at 0
        np.linspace(-1.0, 4.0, 16, dtype=np.float32),
    ],
)
def test_each_channel_is_cut_into_255_steps_that_include_zero(channel: np.ndarray) -> None:
    weight = np.stack([np.append(channel, 0.0), np.append(channel[::-1] * 0.5, 0.0)])
    codes, zero_point, scale = quantize(weight, axis=1)
    assert codes.dtype == zero_point.dtype == np.uint8 and scale.dtype == np.float32
    assert codes.shape == weight.shape and zero_point.shape == scale.shape == (2, 1)
    restored = (codes.astype(np.float32) - zero_point) * scale
    assert np.abs(restored - weight).max() <= scale.max() / 2 + 1e-7
    assert np.all(restored[:, -1] == 0)  # zero is exact (padding, masked weights)


def test_it_writes_what_nncf_writes_for_int8_asym() -> None:
    """The same weights compressed, the same subgraph, codes that differ by at most one step
    (floating-point rounding), and the same answers: the add-on's INT8 entries made before
    (with nncf) and now are the same model."""
    nncf = pytest.importorskip("nncf")  # the converter image's; installed with the tests' venv
    ids = np.random.default_rng(2).integers(0, 50, (4, 5))
    ours, theirs = _graph(3), _graph(3)
    compress_weights(ours)
    theirs = nncf.compress_weights(theirs, mode=nncf.CompressWeightsMode.INT8_ASYM)
    mine, nncfs = _codes(ours), _codes(theirs)
    assert set(mine) == set(nncfs)
    for name, codes in mine.items():
        assert np.abs(codes.astype(int) - nncfs[name].astype(int)).max() <= 1, name
    chains = {_chain(ours, name) for name in mine} | {_chain(theirs, name) for name in nncfs}
    assert chains == {("Convert", "Subtract", "Multiply", "Convert")}
    np.testing.assert_allclose(_run(ours, ids), _run(theirs, ids), rtol=0, atol=0.02)


def _chain(model: ov.Model, name: str) -> tuple[str, ...]:
    """The node types from the constant ``name`` to the first node that is not decompression."""
    (node,) = [op for op in model.get_ops() if op.get_friendly_name() == name]
    kinds = []
    while True:
        targets = [t.get_node() for t in node.output(0).get_target_inputs()]
        if len(targets) != 1 or targets[0].get_type_name() not in ("Convert", "Subtract", "Multiply"):
            return tuple(kinds)
        kinds.append(targets[0].get_type_name())
        node = targets[0]
