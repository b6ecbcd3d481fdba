"""Pre-converted OpenVINO rerankers (as the OpenVINO organisation publishes them on the hub):
the word table comes out of the graph when they are cached, and the scores stay the same."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from homeiq_addon.models.convert import convert
from homeiq_addon.models.loaded import LoadOptions
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.registry import ModelRegistry, ModelSettings
from homeiq_addon.models.reranker import OVReranker
from homeiq_addon.models.types import Role, RoleState
from homeiq_addon.models.word_table import (
    UnsupportedGraphError,
    WordTable,
    detach_word_table,
    find_word_lookup,
    graph_precision,
)
from tests.fake_hub import FakeHub
from tests.tiny_models import export_openvino_reranker

PRECISIONS = ("fp32", "int8-weights", "int8")
REPO = "OpenVINO/bge-reranker-base-int8-ov"
QUERY = "save energy"
DOCS = [
    "Heating stays on while the living room window is open",
    "Porch light turns on at sunset",
    "TV is switched off around 23:30 on weekdays",
    "Dishwasher starts at 02:00 when electricity is cheap",
    *pattern_texts(12, seed=5),
]
TOLERANCE = 1e-6  # pair by pair, the detached graph computes what the original one does


@pytest.fixture(scope="module")
def ov_rerankers(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny reranker exported by optimum-intel, in each precision the hub offers."""
    root = tmp_path_factory.mktemp("ov-rerankers")
    return {p: export_openvino_reranker(tiny_models["reranker"], root / p, p) for p in PRECISIONS}


def pair_scores(xml: Path, pairs: list[list[int]], table: WordTable | None = None) -> np.ndarray:
    """Scores of a graph, one unpadded pair at a time (with the table: fed as inputs_embeds)."""
    compiled = ov.Core().compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = []
    for ids in pairs:
        feed = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        if table is not None:
            feed["inputs_embeds"] = table.lookup(np.array([ids]))
        out.append(float(compiled(feed)[compiled.outputs[0]].reshape(-1)[0]))
    return 1.0 / (1.0 + np.exp(-np.array(out)))


def table_constants(model: ov.Model, vocab: int) -> list[str]:
    return [
        op.get_friendly_name()
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and list(op.get_output_shape(0))[:1] == [vocab]
    ]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_table_leaves_the_graph_and_scores_stay_the_same(
    ov_rerankers: dict[str, Path], tmp_path: Path, precision: str
) -> None:
    source = ov_rerankers[precision]
    vocab = int(json.loads((source / "config.json").read_text())["vocab_size"])
    assert graph_precision(ov.Core().read_model(source / "openvino_model.xml")) == precision
    assert table_constants(ov.Core().read_model(source / "openvino_model.xml"), vocab)

    info = convert("reranker", source, tmp_path, "int8")

    assert (info["precision"], info["embeddings"], info["source_format"]) == (
        precision,
        "word_embeddings.npy",
        "openvino",
    )
    table = np.load(tmp_path / "word_embeddings.npy", mmap_mode="r")
    assert table.shape[0] == vocab
    # 8-bit tables stay 8-bit, with their per-row scales (and zero points when asymmetric).
    assert (table.dtype, "embeddings_scale" in info, "embeddings_zero_point" in info) == {
        "fp32": (np.float32, False, False),
        "int8-weights": (np.uint8, True, True),
        "int8": (np.int8, True, False),
    }[precision]
    model = ov.Core().read_model(tmp_path / "openvino_model.xml")
    assert {p.get_any_name() for p in model.inputs} == {"input_ids", "attention_mask", "inputs_embeds"}
    assert table_constants(model, vocab) == []  # nothing vocabulary-sized is compiled any more

    reranker = OVReranker(tmp_path, REPO, LoadOptions(threads=2, max_batch=4))
    pairs = reranker.encode_pairs(QUERY, DOCS)
    expected = pair_scores(source / "openvino_model.xml", pairs)
    detached = pair_scores(tmp_path / "openvino_model.xml", pairs, WordTable(tmp_path, info))
    np.testing.assert_allclose(detached, expected, atol=TOLERANCE)
    assert np.ptp(expected) > 100 * TOLERANCE  # the documents' scores differ by more than that
    # Served: batched and padded, through the memory-mapped table.
    np.testing.assert_allclose(reranker.score(QUERY, DOCS), expected, atol=1e-5)


def test_fp32_export_matches_pytorch(
    ov_rerankers: dict[str, Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    convert("reranker", ov_rerankers["fp32"], tmp_path, "fp32")
    reranker = OVReranker(tmp_path, REPO, LoadOptions(threads=2))
    ref = AutoModelForSequenceClassification.from_pretrained(tiny_models["reranker"]).eval()
    with torch.no_grad():
        logits = [
            float(ref(input_ids=torch.tensor([ids])).logits[0, 0])
            for ids in reranker.encode_pairs(QUERY, DOCS)
        ]
    np.testing.assert_allclose(reranker.score(QUERY, DOCS), 1 / (1 + np.exp(-np.array(logits))), atol=1e-4)


@pytest.fixture
def hub(ov_rerankers: dict[str, Path]) -> Iterator[FakeHub]:
    with FakeHub() as server:
        server.add_folder(REPO, ov_rerankers["int8-weights"], "3" * 40)
        yield server


def test_the_hub_repo_is_served_with_the_table_outside(
    hub: FakeHub, tmp_path: Path, tiny_models: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="homeiq_addon")
    registry = ModelRegistry(
        ModelSettings(
            data_dir=tmp_path,
            embedding_model=str(tiny_models["embedding"]),
            reranker_model=REPO,
            classifier_model=str(tiny_models["classifier"]),
            threads=2,
            hub_endpoint=hub.url,
        )
    )
    try:
        registry.start_loading([Role.RERANKER])
        registry.wait(timeout=300)
        status = registry.status()[Role.RERANKER]
        assert (status.state, status.source, status.precision) == (RoleState.READY, "hub", "int8-weights")
        (entry,) = (tmp_path / "models" / "reranker").glob("*/*")
        assert (entry / "word_embeddings.npy").exists()
        scores = registry.get_reranker().score(QUERY, DOCS)
        assert scores.shape == (len(DOCS),) and np.all((scores > 0) & (scores < 1))
    finally:
        registry.close()
    assert not [r for r in caplog.records if "inside the graph" in r.getMessage()]


def test_a_lookup_that_cannot_be_read_leaves_the_graph_as_it_was(tmp_path: Path) -> None:
    ids = ops.parameter([-1, -1], ov.Type.i64, name="input_ids")
    ids.output(0).get_tensor().set_names({"input_ids"})
    table = ops.constant(np.arange(32, dtype=np.float32).reshape(4, 8))
    flipped = ops.transpose(ops.transpose(table, [1, 0]), [1, 0])  # a path the reader does not know
    model = ov.Model([ops.gather(flipped, ids, 0)], [ids])
    with pytest.raises(UnsupportedGraphError, match="Transpose"):
        detach_word_table(model, tmp_path / "table.npy")
    assert not (tmp_path / "table.npy").exists()
    assert [p.get_any_name() for p in model.inputs] == ["input_ids"]
    assert find_word_lookup(model) is not None

    x = ops.parameter([2], ov.Type.f32)
    plain = ov.Model([ops.relu(x)], [x])
    assert find_word_lookup(plain) is None
    with pytest.raises(UnsupportedGraphError, match="no word-embedding lookup"):
        detach_word_table(plain, tmp_path / "table.npy")
