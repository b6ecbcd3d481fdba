"""Several texts in one row of an encoder graph, each attending only to itself.

Padding every text of a batch to its longest wastes the model's time on tokens nobody reads: 256
pattern texts (7-32 tokens, 5,259 in all) ran as 6,400 tokens in length buckets. Packed into rows
of 48 tokens they run as 5,376, and each text stays exactly what it was alone because

- its tokens attend only to its own tokens (a block-diagonal attention mask per row, given to
  every ``ScaledDotProductAttention`` of the graph instead of the padding mask),
- its positions count from the model's first position at its first token (a ``position_ids``
  input instead of the graph's own count: 0 for BERT, ``padding_idx + 1`` for XLM-R), and
- what is read from it is its own: the mean of its own tokens' hidden states for an embedder
  (pooled here from the graph's last hidden state instead of inside the graph), L2-normalised, or
  for a cross-encoder the classification head over its own first token (a ``first_tokens``
  input: where each pair's first token lies in the flattened rows, instead of each row's first).

:func:`packed_graph` rewrites a BERT-family graph that way at load: an embedding graph (ours,
pooled inside, or a sentence-transformers/optimum export that outputs the hidden states), or with
``head=True`` a cross-encoder whose head reads the first token (our XLM-R reranker). It returns
None for a graph of another shape, which then runs padded as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import openvino as ov
from openvino import opset13 as ops

from .graph_weights import constant_values, parameter
from .runtime import core
from .types import FloatArray

POSITION_IDS = "position_ids"
ATTENTION_BLOCKS = "attention_blocks"  # (batch, 1, length, length) booleans: who attends to whom
FIRST_TOKENS = "first_tokens"  # (items,) flat index of each item's first token, for a head
PASS_THROUGH = ("Convert", "Unsqueeze")  # what lies between the padding mask and its users
POSITION_PASS_THROUGH = ("Convert", "Unsqueeze", "Broadcast")  # ...and the position count and its Gather

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _source(value: ov.Output, through: tuple[str, ...] = PASS_THROUGH) -> ov.Node:
    """The node behind ``value``, looking through the node kinds ``through`` (their first input)."""
    node = value.get_node()
    while node.get_type_name() in through:
        node = node.input_value(0).get_node()
    return node


def _first_count(indices: ov.Node) -> int | None:
    """The first value of ``indices`` where they count up by one along the row: a Slice from 0
    of a constant 0, 1, 2... (BERT's ``position_ids`` buffer), or a Range from a constant, step 1
    (XLM-R counting from ``padding_idx + 1``); None for anything else."""
    kind = indices.get_type_name()
    if kind == "Slice":
        data, start, step = (constant_values(indices.input_value(k)) for k in (0, 1, 3))
        if data is None or start is None or step is None:
            return None
        counts = start.tolist() == [0] and step.tolist() == [1] and np.array_equal(data, np.arange(data.size))
        return 0 if counts else None
    if kind == "Range":
        first, step = constant_values(indices.input_value(0)), constant_values(indices.input_value(2))
        if first is not None and step is not None and first.size == 1 and step.tolist() == [1]:
            return int(first[0])
    return None


def _position_gather(model: ov.Model) -> tuple[ov.Node, int] | None:
    """The Gather that looks up position embeddings with a count along the row, and the count's
    first value."""
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Gather":
            continue
        first = _first_count(_source(node.input_value(1), POSITION_PASS_THROUGH))
        if first is not None:
            return node, first
    return None


def _first_token_select(model: ov.Model) -> ov.Node | None:
    """The last Gather that takes token 0 of every row of a (batch, length, width) tensor: what a
    classification head reads (``hidden[:, 0, :]``)."""
    found = None
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Gather" or node.get_attributes().get("batch_dims"):
            continue
        index, axis = constant_values(node.input_value(1)), constant_values(node.input_value(2))
        if index is None or axis is None or index.tolist() != [0] or axis.tolist() not in ([1], [-2]):
            continue
        if len(node.input_value(0).get_partial_shape()) == 3 and len(node.get_output_partial_shape(0)) == 2:
            found = node
    return found


def _hidden_states(model: ov.Model, mask: ov.Node) -> ov.Output | None:
    """The last hidden state: the graph's output when it has one row per token, else the tensor
    the graph's own pooling multiplies by the padding mask."""
    out = model.outputs[0]
    if len(out.get_partial_shape()) == 3:
        return out.get_node().input_value(0)
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Multiply":
            continue
        a, b = node.input_value(0), node.input_value(1)
        for hidden, other in ((a, b), (b, a)):
            if _source(other) is mask and len(hidden.get_partial_shape()) == 3:
                return hidden
    return None


def _is_padding_mask(model: ov.Model, masks: Sequence[ov.Output], width: int) -> bool:
    """Whether each of ``masks`` (the attention masks the graph computes) lets every token attend
    to every real token of its text and to nothing else: checked by running the graph's mask
    computation on a padded example, so a causal or windowed mask is never replaced. ``width``:
    the size of one token's vector, for a graph fed ``inputs_embeds``."""
    ids = np.ones((2, 5), dtype=np.int64)
    padding = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=np.int64)
    expected = np.broadcast_to(padding.astype(bool)[:, None, None, :], (2, 1, 5, 5))
    feeds = {
        "input_ids": ids,
        "inputs_embeds": np.zeros((2, 5, width), dtype=np.float32),
        "attention_mask": padding,
        "token_type_ids": np.zeros_like(ids),
    }
    try:
        probe = ov.Model([ops.result(m) for m in masks], model.get_parameters(), "attention_masks")
        results = (
            core()
            .compile_model(probe, "CPU")
            .create_infer_request()
            .infer({p.get_any_name(): feeds[p.get_any_name()] for p in probe.inputs})
        )
    except (RuntimeError, KeyError):  # an input this does not know how to fill
        return False
    real = padding.astype(bool)[:, None, :, None]  # rows of padding: nobody reads what they see
    for got in results.values():
        if np.ndim(got) != 4:
            return False
        seen = np.broadcast_to(np.asarray(got), expected.shape)
        if not np.array_equal(seen & real, expected & real):
            return False
    return True


def _read_first_tokens(select: ov.Node) -> ov.Node:
    """Make the head read the rows :data:`FIRST_TOKENS` of the flattened hidden states instead of
    ``select``'s token 0 of each row; returns that new input."""
    read = select.input_value(0)  # (batch, length, width): every token's hidden state
    width = read.get_partial_shape()[2].get_length()
    firsts = ops.parameter([-1], np.int64, name=FIRST_TOKENS)
    firsts.output(0).set_names({FIRST_TOKENS})
    flat = ops.reshape(read, ops.constant(np.array([-1, width], dtype=np.int64)), False)
    picked = ops.gather(flat, firsts, ops.constant(0, np.int64))
    for target in list(select.output(0).get_target_inputs()):
        target.replace_source_output(picked.output(0))
    return firsts


@dataclass(frozen=True, slots=True)
class PackedGraph:
    """A graph rewritten to run packed rows, and the position id of each item's first token."""

    model: ov.Model
    first_position: int


def packed_graph(model: ov.Model, *, head: bool = False) -> PackedGraph | None:
    """A new graph over ``model``'s weights with inputs ``input_ids`` or ``inputs_embeds`` (as
    ``model`` takes them), :data:`POSITION_IDS` and :data:`ATTENTION_BLOCKS` (plus
    ``token_type_ids`` where the model has it). Its output: the last hidden state, or with ``head``
    the model's own output (a cross-encoder's logits) for each item whose first token
    :data:`FIRST_TOKENS` gives. None where ``model`` is not a graph this knows how to rewrite.
    ``model`` itself is changed on the way (its attention reads the new mask): pass one read for
    this."""
    tokens = parameter(model, "input_ids") or parameter(model, "inputs_embeds")
    mask = parameter(model, "attention_mask")
    if tokens is None or mask is None or parameter(model, POSITION_IDS) is not None:
        return None
    attention = [n for n in model.get_ordered_ops() if n.get_type_name() == "ScaledDotProductAttention"]
    if not attention or any(
        n.get_input_size() < 4
        or n.input_value(3).get_element_type() != ov.Type.boolean
        or n.get_attributes().get("causal")
        for n in attention
    ):
        return None
    position = _position_gather(model)
    select = _first_token_select(model) if head else None
    hidden = None if head else _hidden_states(model, mask)
    readable = hidden is not None or (
        select is not None and select.input_value(0).get_partial_shape()[2].is_static
    )
    if position is None or not readable or len(model.outputs) != 1:
        return None
    gather, first_position = position
    width = gather.get_output_partial_shape(0)[-1]
    masks = {(m.get_node().get_name(), m.get_index()): m for m in (n.input_value(3) for n in attention)}
    if not _is_padding_mask(model, list(masks.values()), width.get_length() if width.is_static else 1):
        return None
    positions = ops.parameter([-1, -1], np.int64, name=POSITION_IDS)
    positions.output(0).set_names({POSITION_IDS})
    blocks = ops.parameter([-1, 1, -1, -1], np.bool_, name=ATTENTION_BLOCKS)
    blocks.output(0).set_names({ATTENTION_BLOCKS})
    inputs = [tokens, positions, blocks]
    if select is not None:
        inputs.append(_read_first_tokens(select))
        output = model.outputs[0].get_node().input_value(0)
    else:
        assert hidden is not None
        output = hidden
    gather.input(1).replace_source_output(
        ops.convert(positions, gather.input_value(1).get_element_type()).output(0)
    )
    for node in attention:
        node.input(3).replace_source_output(blocks.output(0))
    result = ops.result(output)
    others = [p for p in model.get_parameters() if p is not tokens and p is not mask]
    try:
        packed = ov.Model([result], [*inputs, *others], "packed_encoder")
    except RuntimeError:  # something else still reads the padding mask
        return None
    packed.validate_nodes_and_infer_types()
    return PackedGraph(packed, first_position)


@dataclass(frozen=True, slots=True)
class PackedFeed:
    """The inputs of one packed inference, and where each text's tokens lie in the flattened
    (batch x length) hidden states: ``starts[k]:ends[k]`` for the k-th text of ``items``."""

    inputs: dict[str, IntArray | BoolArray]
    items: tuple[int, ...]
    starts: IntArray
    ends: IntArray


def packed_feed(
    rows: Sequence[Sequence[int]],
    tokens: Sequence[Sequence[int]],
    batch: int,
    length: int,
    pad_id: int,
    *,
    first_position: int = 0,
) -> PackedFeed:
    """Lay the texts ``rows[r]`` (indices into ``tokens``) one after the other in row ``r`` of a
    (batch, length) input, their positions counting from ``first_position``. Each text attends to
    its own tokens only; a padding token (after the last text of a row, or in a row with no text)
    attends to itself, so no softmax is empty."""
    ids = np.full((batch, length), pad_id, dtype=np.int64)
    positions = np.full((batch, length), first_position, dtype=np.int64)
    block = -1 - np.arange(batch * length, dtype=np.int64).reshape(batch, length)  # unique per pad
    items: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for r, row in enumerate(rows):
        at = 0
        for item in row:
            n = len(tokens[item])
            ids[r, at : at + n] = tokens[item]
            positions[r, at : at + n] = np.arange(first_position, first_position + n)
            block[r, at : at + n] = len(items)
            items.append(item)
            starts.append(r * length + at)
            ends.append(r * length + at + n)
            at += n
    blocks = block[:, None, :, None] == block[:, None, None, :]
    return PackedFeed(
        {"input_ids": ids, POSITION_IDS: positions, ATTENTION_BLOCKS: blocks},
        tuple(items),
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
    )


def pool_texts(hidden: FloatArray, feed: PackedFeed) -> FloatArray:
    """Each text's mean hidden state over its own tokens, L2-normalised (a text of no tokens: a
    vector of zeros, as a fully masked text pooled inside the graph gives)."""
    flat = np.asarray(hidden, dtype=np.float32).reshape(-1, hidden.shape[-1])
    counts = feed.ends - feed.starts
    out = np.zeros((len(feed.items), flat.shape[1]), dtype=np.float32)
    full = counts > 0
    if full.any():
        starts, ends = feed.starts[full], feed.ends[full]
        bounds = np.unique(np.concatenate([starts, ends[ends < len(flat)]]))
        sums = np.add.reduceat(flat, bounds, axis=0)[np.searchsorted(bounds, starts)]
        out[full] = sums / counts[full, None]
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norm, 1e-12), dtype=np.float32)
