"""Packed rows of texts (embedder) and of pairs (reranker): each attends to itself only, and comes
out as it would alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from homeiq_addon.models import loaded as loaded_module
from homeiq_addon.models.batching import ROW_TOKENS
from homeiq_addon.models.embedder import OVEmbedder
from homeiq_addon.models.loaded import LoadOptions
from homeiq_addon.models.packing import (
    ATTENTION_BLOCKS,
    FIRST_TOKENS,
    POSITION_IDS,
    packed_feed,
    packed_graph,
    pool_texts,
)
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.reranker import OVReranker
from homeiq_addon.models.runtime import core

OPTIONS = LoadOptions(threads=1, warm=False)
TEXTS = [*pattern_texts(45), "", "ok", "light " * 400, "Turn on Kitchen light"]


@pytest.fixture
def fp32_embedder_dir(fp32_data_dir: Path) -> Path:
    (entry,) = (fp32_data_dir / "models" / "embedding").glob("*/*-fp32")
    return entry


@pytest.fixture
def fp32_reranker_dir(fp32_data_dir: Path) -> Path:
    (entry,) = (fp32_data_dir / "models" / "reranker").glob("*/*-fp32")
    return entry


def test_a_row_holds_texts_back_to_back_each_attending_to_itself() -> None:
    tokens = [[5, 6, 7], [8, 9], [4]]
    feed = packed_feed([(0, 1), (2,)], tokens, batch=4, length=8, pad_id=0)
    ids, positions, blocks = (feed.inputs[k] for k in ("input_ids", POSITION_IDS, ATTENTION_BLOCKS))
    assert ids[0].tolist() == [5, 6, 7, 8, 9, 0, 0, 0] and ids[1].tolist() == [4, *[0] * 7]
    assert positions[0].tolist() == [0, 1, 2, 0, 1, 0, 0, 0]  # each text counts from 0
    assert blocks.shape == (4, 1, 8, 8)
    row = blocks[0, 0]
    assert row[:3, :3].all() and row[3:5, 3:5].all()  # a text sees all of itself...
    assert not row[:3, 3:].any() and not row[3:5, :3].any()  # ...and nothing else
    assert (row[5:, 5:] == np.eye(3, dtype=bool)).all() and not row[5:, :5].any()  # padding: itself
    assert (blocks[3, 0] == np.eye(8, dtype=bool)).all()  # an empty row: every token itself
    assert feed.items == (0, 1, 2)
    assert feed.starts.tolist() == [0, 3, 8] and feed.ends.tolist() == [3, 5, 9]


def test_positions_count_from_the_models_first_position() -> None:
    """XLM-R counts positions from padding_idx + 1: every pair of a row starts there again."""
    feed = packed_feed([(0, 1)], [[5, 6, 7], [8, 9]], batch=1, length=6, pad_id=1, first_position=2)
    assert feed.inputs[POSITION_IDS][0].tolist() == [2, 3, 4, 2, 3, 2]
    assert feed.starts.tolist() == [0, 3]  # where the head reads each pair's first token


def test_pooling_is_each_texts_own_mean_normalised() -> None:
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(2, 6, 4)).astype(np.float32)
    feed = packed_feed([(0, 1, 2), (3,)], [[1, 2], [], [3, 4, 5], [6]], batch=2, length=6, pad_id=0)
    got = pool_texts(hidden, feed)
    flat = hidden.reshape(-1, 4)
    for k, (start, end) in enumerate(zip(feed.starts, feed.ends, strict=True)):
        if start == end:
            assert not got[k].any()  # a text of no tokens: zeros, not NaN
            continue
        mean = flat[start:end].mean(axis=0)
        np.testing.assert_allclose(got[k], mean / np.linalg.norm(mean), rtol=1e-5)


def op_count(model: ov.Model, kind: str) -> int:
    return sum(op.get_type_name() == kind for op in model.get_ops())


def test_the_converters_graph_is_packed_with_the_same_layers(fp32_embedder_dir: Path) -> None:
    original = core().read_model(fp32_embedder_dir / "openvino_model.xml")
    layers = {kind: op_count(original, kind) for kind in ("MatMul", "ScaledDotProductAttention", "MVN")}
    graph = packed_graph(original)
    assert graph is not None and graph.first_position == 0
    packed = graph.model
    assert {p.get_any_name() for p in packed.inputs} == {"input_ids", POSITION_IDS, ATTENTION_BLOCKS}
    assert len(packed.outputs[0].get_partial_shape()) == 3  # hidden states: pooled per text here
    assert {kind: op_count(packed, kind) for kind in layers} == layers and layers["MatMul"] > 0
    for op in packed.get_ops():
        if op.get_type_name() == "ScaledDotProductAttention":
            assert ATTENTION_BLOCKS in op.input_value(3).get_names()


def test_packed_embeddings_equal_one_text_a_row(
    fp32_embedder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = OVEmbedder(fp32_embedder_dir, "tiny", OPTIONS)
    monkeypatch.setattr(loaded_module, "packed_graph", lambda model, **_: None)
    padded = OVEmbedder(fp32_embedder_dir, "tiny", OPTIONS)
    assert packed.packed and not padded.packed

    got, ref = packed.embed(TEXTS), padded.embed(TEXTS)
    assert (got * ref).sum(axis=1).min() > 0.9999
    # The same text, alone or sharing rows with others in another order.
    alone = packed.embed([TEXTS[-1]])
    shuffled = packed.embed(TEXTS[::-1])
    assert float(alone[0] @ shuffled[0]) > 0.9999
    np.testing.assert_allclose(shuffled[::-1], got, atol=1e-5)


def test_a_graph_of_another_shape_runs_one_text_a_row() -> None:
    ids = ops.parameter([-1, -1], np.int64, name="input_ids")
    ids.output(0).set_names({"input_ids"})
    mask = ops.parameter([-1, -1], np.int64, name="attention_mask")
    mask.output(0).set_names({"attention_mask"})
    table = ops.constant(np.ones((10, 4), dtype=np.float32))
    hidden = ops.gather(table, ids, ops.constant(0))
    masked = ops.multiply(hidden, ops.unsqueeze(ops.convert(mask, ov.Type.f32), ops.constant(2)))
    model = ov.Model([ops.reduce_sum(masked, ops.constant(1))], [ids, mask], "no_attention")
    assert packed_graph(model) is None


def test_a_causal_attention_mask_is_never_replaced(fp32_embedder_dir: Path) -> None:
    """A decoder-style embedder masks later tokens: packing would let them leak in, so its graph
    is left as it is (the mask is checked by running the graph's own mask computation)."""
    model = core().read_model(fp32_embedder_dir / "openvino_model.xml")
    ids = next(p for p in model.get_parameters() if p.get_friendly_name() == "input_ids")
    length = ops.gather(ops.shape_of(ids), ops.constant(1), ops.constant(0))
    steps = ops.range(ops.constant(0, np.int64), length, ops.constant(1, np.int64), "i64")
    earlier = ops.greater_equal(ops.unsqueeze(steps, ops.constant(1)), ops.unsqueeze(steps, ops.constant(0)))
    for op in model.get_ops():
        if op.get_type_name() == "ScaledDotProductAttention":
            causal = ops.logical_and(op.input_value(3), earlier)
            op.input(3).replace_source_output(causal.output(0))
    model.validate_nodes_and_infer_types()
    assert packed_graph(model) is None


def test_the_rerankers_graph_is_packed_with_its_head(fp32_reranker_dir: Path) -> None:
    original = core().read_model(fp32_reranker_dir / "openvino_model.xml")
    layers = {kind: op_count(original, kind) for kind in ("MatMul", "ScaledDotProductAttention", "Tanh")}
    again = core().read_model(fp32_reranker_dir / "openvino_model.xml")
    assert packed_graph(again) is None  # no hidden states to pool: only with its head
    graph = packed_graph(original, head=True)
    assert graph is not None
    assert graph.first_position == 2  # XLM-R: padding_idx (1) + 1
    packed = graph.model
    names = {p.get_any_name() for p in packed.inputs}
    assert names == {"inputs_embeds", POSITION_IDS, ATTENTION_BLOCKS, FIRST_TOKENS}
    assert {kind: op_count(packed, kind) for kind in layers} == layers
    assert len(packed.outputs[0].get_partial_shape()) == 2  # one logit row per pair


def test_packed_pair_scores_equal_one_pair_a_row(
    fp32_reranker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = OVReranker(fp32_reranker_dir, "tiny", OPTIONS)
    monkeypatch.setattr(loaded_module, "packed_graph", lambda model, **_: None)
    padded = OVReranker(fp32_reranker_dir, "tiny", OPTIONS)
    assert packed.packed and not padded.packed
    query = "save energy at night"
    docs = [*pattern_texts(40), "", "ok", "heating " * 600, "Turn on Kitchen light"]
    lengths = [len(r) for r in packed.encode_pairs(query, docs)]
    assert min(lengths) * 2 <= ROW_TOKENS  # some rows hold several pairs

    got, ref = packed.score(query, docs), padded.score(query, docs)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # The same pair, alone or sharing rows with others in another order.
    np.testing.assert_allclose(packed.score(query, docs[::-1])[::-1], got, atol=1e-5)
    np.testing.assert_allclose(packed.score(query, [docs[3]]), got[3:4], atol=1e-5)
    assert packed.score(query, []).shape == (0,)
