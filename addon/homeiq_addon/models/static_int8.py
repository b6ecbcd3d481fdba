"""Static INT8 with OpenVINO alone: a graph's matrix products run on 8-bit activations and weights.

What nncf's ``quantize(model_type=TRANSFORMER, preset=MIXED)`` writes for an encoder, and what
OpenVINO's CPU plugin turns into INT8 kernels (VNNI, AMX):

- each MatMul's activation operand through a FakeQuantize of 256 levels over the range the
  calibration batches showed (per tensor, asymmetric: the mean over batches of each batch's
  minimum and maximum, widened to include 0, counting real tokens only);
- each MatMul's constant weight as signed 8-bit codes with a scale per output channel
  (symmetric, 255 levels): ``Constant(i8) -> Convert(f32) -> Multiply(scale)``; 7 bits (127
  levels) on a CPU whose INT8 kernels saturate (:func:`weight_steps`), as nncf's overflow fix;
- SmoothQuant first, where an activation feeds only such MatMuls: its channels divided by
  ``s = max|x|^ALPHA / max|w|^(1 - ALPHA)`` and the weights' input rows multiplied by it, so that
  outlier channels move into the weights, which have a scale per channel anyway;
- before anything else, every conversion to floating point of an 8-bit integer (or boolean) the
  graph computes reads a 32-bit integer instead (:func:`widen_integer_converts`). Once a graph
  holds FakeQuantize, the CPU plugin's low-precision transformations take ``Convert(i8) ->
  Subtract -> Multiply`` for the dequantization of an 8-bit tensor and move it: T5's attention
  mask, ``(1 - mask) * float32.min`` from a boolean mask, is exactly that, and the encoder then
  attended to its padding and lost its position bias (42 % relative error in flan-t5-small's
  encoder states with a single FakeQuantize anywhere in it; 4 % with every MatMul quantized once
  the mask reads an i32). That, not T5's activation outliers, is why static INT8 had flipped
  40 % of the classifier's answers (with nncf too: the same plugin).

Needing no nncf (+233 MB of packages: scipy, scikit-learn, networkx), it serves the default
add-on image. Measured against nncf's static INT8 (2026-12-06, Xeon capped to AVX-VNNI and with
AMX): the real all-MiniLM-L6-v2's min cosine to FP32 over 256 pattern texts 0.9960 (nncf 0.9957),
1.85x FP32's speed (nncf 1.87x); bge-reranker-base's architecture (random weights) Spearman 0.990
(nncf 0.992), 2.37x FP32 on AVX-VNNI (nncf 2.26x) and 5.72x with AMX (nncf 5.82x). With
ALPHA 0.5 the min cosine fell to 0.984, with 0.95 0.994, without smoothing 0.988.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov
from openvino import opset13 as ops

from .precision import cpu_identity
from .runtime import release_file_pages
from .weight_int8 import weight_source

LEVELS = 256  # activations: unsigned 8-bit
WEIGHT_STEPS = 127  # weights: signed 8-bit, symmetric (-127..127)
# Weights on an x86 CPU without VNNI (CpuIdentity.int8_pairs_saturate): 7 bits, so that two
# products of an activation code (0..255) and a weight code add up within 16 bits (2 x 255 x 63 <
# 32,767). Measured on the AMX Xeon capped to AVX2 (2026-12-07; the real all-MiniLM-L6-v2, 256
# pattern texts, min / mean cosine to FP32): 8-bit weights 0.9966 / 0.9987 uncapped but 0.9933 /
# 0.9967 capped (saturated); 7-bit weights 0.9950 / 0.9971 both ways (none saturate).
NARROW_WEIGHT_STEPS = 63
ALPHA = 0.8  # SmoothQuant's migration strength
_SCALE_BOUNDS = (1e-2, 1e2)  # smoothing never scales a channel by more than this
Batch = Mapping[str, npt.NDArray[Any]]


@dataclass
class _Weight:
    """A MatMul that multiplies an activation by a constant weight, and SmoothQuant's factor for
    each of the weight's input rows (None where its activation is not smoothed)."""

    matmul: ov.Node
    rows: npt.NDArray[np.float32] | None = None

    def data(self) -> npt.NDArray[np.float32]:
        """The weight as the model holds it (mapped from the IR file, not copied, where it can)."""
        weight = _weight_operand(self.matmul)
        assert weight is not None
        return np.asarray(weight.get_node().get_data(), dtype=np.float32)

    @property
    def in_first(self) -> bool:
        """Whether the weight is laid out (in, out), not (out, in)."""
        return not self.matmul.get_attributes()["transpose_b"]


@dataclass
class _Activation:
    """One activation that feeds MatMuls: where it comes from, where it goes (with the weight it
    is multiplied by, if any), what it held."""

    value: ov.Output
    targets: list[tuple[ov.Input, _Weight | None]] = field(default_factory=list)
    lows: list[npt.NDArray[np.float32]] = field(default_factory=list)  # per batch, per channel
    highs: list[npt.NDArray[np.float32]] = field(default_factory=list)


def _weight_operand(matmul: ov.Node) -> ov.Output | None:
    """The constant weight (its second operand) of a MatMul that multiplies an activation by it."""
    if matmul.get_attributes()["transpose_a"]:
        return None
    source = weight_source(matmul.input_value(1))
    return source if source is not None and len(source.get_partial_shape()) == 2 else None


def _activations(model: ov.Model) -> tuple[dict[tuple[str, int], _Activation], list[_Weight]]:
    """Every MatMul operand that is not a constant, by its source, and the MatMuls with a weight."""
    found: dict[tuple[str, int], _Activation] = {}
    weighted = []
    for node in model.get_ordered_ops():
        if node.get_type_name() != "MatMul":
            continue
        weight = _Weight(node) if _weight_operand(node) is not None else None
        if weight is not None:
            weighted.append(weight)
        for port in range(2):
            value = node.input_value(port)
            if weight_source(value) is not None:
                continue
            key = (value.get_node().get_friendly_name(), value.get_index())
            found.setdefault(key, _Activation(value)).targets.append((node.input(port), weight))
    return found, weighted


def _calibrate(
    model: ov.Model,
    found: dict[tuple[str, int], _Activation],
    batches: Sequence[Batch],
    mapped: Iterable[Path],
) -> None:
    """Each activation's per-channel minimum and maximum in each batch, over real tokens."""
    probe = model.clone()
    by_name = {node.get_friendly_name(): node for node in probe.get_ops()}
    keys = list(found)
    first = len(probe.outputs)
    probe.add_outputs([by_name[name].output(index) for name, index in keys])
    compiled = ov.Core().compile_model(probe, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    release_file_pages(mapped)  # the compiled model holds its own copy of every weight
    request = compiled.create_infer_request()
    for batch in batches:
        # Outputs read in place: compiled(batch) copies every one out, and held the last batch's
        # copies while the next batch ran.
        request.infer(dict(batch), share_inputs=True, share_outputs=True)
        mask = np.asarray(batch["attention_mask"]).reshape(-1) > 0 if "attention_mask" in batch else None
        for index, key in enumerate(keys, start=first):
            values = np.asarray(request.get_output_tensor(index).data, dtype=np.float32)
            values = values.reshape(-1, values.shape[-1])
            if mask is not None and values.shape[0] == mask.shape[0]:
                values = values[mask]
            found[key].lows.append(values.min(axis=0))
            found[key].highs.append(values.max(axis=0))


def _smooth(activation: _Activation) -> None:
    """SmoothQuant, where every MatMul the activation feeds multiplies it by a constant weight:
    the activation divided by the factors here, each weight's rows multiplied by them as it is
    quantized (never held in FP32 twice)."""
    weights = [w for target, w in activation.targets if w is not None and target.get_index() == 0]
    if not weights or len(weights) != len(activation.targets):
        return
    biggest = np.maximum(np.abs(np.stack(activation.lows)), np.abs(np.stack(activation.highs))).max(axis=0)
    rows = np.zeros_like(biggest)
    for weight in weights:
        rows = np.maximum(rows, np.abs(weight.data()).max(axis=1 if weight.in_first else 0))
    scale = np.maximum(biggest, 1e-5) ** ALPHA / np.maximum(rows, 1e-5) ** (1 - ALPHA)
    scale = np.clip(scale, *_SCALE_BOUNDS).astype(np.float32)
    name = activation.value.get_node().get_friendly_name()
    smoothed = ops.multiply(activation.value, ops.constant(1.0 / scale), name=f"{name}/smooth_quant")
    activation.value = smoothed.output(0)
    for weight in weights:
        weight.rows = scale
    activation.lows = [low / scale for low in activation.lows]
    activation.highs = [high / scale for high in activation.highs]


def _fake_quantize(activation: _Activation) -> None:
    """The activation, through a FakeQuantize over its calibrated range, into each MatMul."""
    low = min(float(np.mean([values.min() for values in activation.lows])), 0.0)
    high = max(float(np.mean([values.max() for values in activation.highs])), 0.0)
    if high - low < 1e-12:
        high = low + 1e-12
    low_c, high_c = ops.constant(np.float32(low)), ops.constant(np.float32(high))
    name = activation.value.get_node().get_friendly_name()
    quantized = ops.fake_quantize(activation.value, low_c, high_c, low_c, high_c, LEVELS, name=f"{name}/fq")
    for target, _weight in activation.targets:
        target.replace_source_output(quantized.output(0))


def weight_steps() -> int:
    """The largest weight code for this machine's CPU (as OpenVINO may use it: ``cpu_identity``):
    NARROW_WEIGHT_STEPS where its INT8 kernels saturate, WEIGHT_STEPS elsewhere."""
    return NARROW_WEIGHT_STEPS if cpu_identity().int8_pairs_saturate else WEIGHT_STEPS


def _quantize_weight(weight: _Weight, steps: int) -> None:
    """The MatMul's weight (smoothed, if its activation is) as signed codes (-steps..steps) with
    a scale per output channel."""
    array = weight.data()
    if weight.rows is not None:
        array = array * (weight.rows[:, None] if weight.in_first else weight.rows[None, :])
    summed = 0 if weight.in_first else 1  # the axis summed over
    scale = np.abs(array).max(axis=summed, keepdims=True) / steps
    scale = np.where(scale < 1e-12, 1e-12, scale).astype(np.float32)
    codes = np.clip(np.round(array / scale), -steps, steps).astype(np.int8)
    source = _weight_operand(weight.matmul)
    assert source is not None
    name = source.get_node().get_friendly_name()
    value = ops.convert(ops.constant(codes, name=f"{name}/int8"), ov.Type.f32)
    weight.matmul.input(1).replace_source_output(
        ops.multiply(value, ops.constant(scale), name=f"{name}/scale").output(0)
    )


def widen_integer_converts(model: ov.Model) -> int:
    """Make every conversion to a float type of an 8-bit integer or boolean activation read a
    32-bit integer instead (the same values), so that the CPU plugin's low-precision
    transformations cannot take it for a dequantization (see the module docstring); returns
    how many. Constants (the weights' codes) are left as they are: those are dequantizations."""
    narrow = (ov.Type.i8, ov.Type.u8, ov.Type.boolean)
    widened = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Convert" or not node.get_output_element_type(0).is_real():
            continue
        source = node.input_value(0)
        if source.get_element_type() in narrow and source.get_node().get_type_name() != "Constant":
            node.input(0).replace_source_output(ops.convert(source, ov.Type.i32).output(0))
            widened += 1
    return widened


def quantize(
    model: ov.Model, batches: Sequence[Batch], mapped: Iterable[Path] = (), *, steps: int | None = None
) -> int:
    """Make ``model`` static INT8 in place, calibrated on ``batches`` (the graph's inputs);
    returns how many activations it quantizes. ``mapped``: the folders whose files ``model``
    was read from, whose pages this process gives back once it holds what it needs elsewhere
    (on XLM-R base, 344 MB of FP32 weights that would otherwise count twice). ``steps``: the
    largest weight code (this CPU's :func:`weight_steps` by default)."""
    if not batches:
        raise ValueError("static INT8 needs at least one calibration batch")
    steps = weight_steps() if steps is None else steps
    mapped = list(mapped)
    widen_integer_converts(model)
    found, weighted = _activations(model)
    _calibrate(model, found, batches, mapped)
    for activation in found.values():
        _smooth(activation)
        _fake_quantize(activation)
    for weight in weighted:
        _quantize_weight(weight, steps)
    release_file_pages(mapped)  # the FP32 weights are read for the last time
    model.validate_nodes_and_infer_types()
    return len(found)
