"""What a compiled model's weights hold (graph_weights.held_weight_bytes), on real OpenVINO."""

from __future__ import annotations

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from homeiq_addon.models import runtime
from homeiq_addon.models.graph_weights import held_weight_bytes


def _compiled(weight: ov.Output) -> ov.CompiledModel:
    x = ops.parameter([-1, 64], np.float32, name="x")
    ids = ops.parameter([-1], np.int64, name="ids")
    table = ops.constant(np.ones((100, 256), np.float32))  # a lookup table counts too
    looked_up = ops.gather(table, ids, np.int64(0))
    out = ops.add(ops.matmul(x, weight, False, True), looked_up)
    model = ov.Model([out], [x, ids])
    return runtime.core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def test_fp32_weights_count_four_bytes_and_int8_ones_one() -> None:
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((256, 64)).astype(np.float32)
    fp32 = _compiled(ops.constant(weights).output(0))
    assert held_weight_bytes(fp32) == (256 * 64 + 100 * 256) * 4

    # Weight-only INT8 as NNCF writes it: (q - zero point) * scale, per output row.
    q = ops.constant(rng.integers(0, 255, (256, 64), dtype=np.uint8))
    zero = ops.constant(np.full((256, 1), 128, np.uint8))
    scale = ops.constant(np.full((256, 1), 0.01, np.float32))
    dequantized = ops.multiply(ops.subtract(ops.convert(q, "f32"), ops.convert(zero, "f32")), scale)
    int8 = _compiled(dequantized.output(0))
    held = held_weight_bytes(int8)
    assert 256 * 64 + 100 * 256 * 4 <= held <= 256 * 64 + 100 * 256 * 4 + 256 * 2 * 4, held
