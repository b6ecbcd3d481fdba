"""Pre-converted OpenVINO models as the hub holds them (optimum-intel exports): rerankers get
their word table out of the graph when cached, with the same scores; flan-t5 exports are served
as they are, with the same label probabilities as PyTorch."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from homeiq_addon.models.classifier import OVClassifier
from homeiq_addon.models.convert import convert
from homeiq_addon.models.labels import category_prompt, priority_prompt
from homeiq_addon.models.loaded import LoadOptions
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.reranker import OVReranker
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Role, RoleState
from homeiq_addon.models.word_table import (
    UnsupportedGraphError,
    WordTable,
    detach_word_table,
    find_word_lookup,
    graph_precision,
)
from tests.addon.test_models_inference import reference_label_probs
from tests.fake_hub import FakeHub
from tests.tiny_models import (
    build_classifier,
    export_openvino_classifier,
    export_openvino_rerankers,
    tiny_settings,
)

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
    return export_openvino_rerankers(
        tiny_models["reranker"], tmp_path_factory.mktemp("ov-rerankers"), PRECISIONS
    )


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
        tiny_settings(
            tmp_path, tiny_models, reranker_model=REPO, reranker_revision="3" * 40, hub_endpoint=hub.url
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


@pytest.fixture(scope="module")
def ov_classifiers(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """optimum-intel exports of tiny flan-t5-shaped models: stateful and cache-less decoders, and
    one whose tokenizer splits label words (several decoder steps per label)."""
    root = tmp_path_factory.mktemp("ov-classifiers")
    split = build_classifier(root / "split-source", seed=3, whole_labels=False)
    return {
        "stateful": export_openvino_classifier(tiny_models["classifier"], root / "stateful", stateful=True),
        "cache-less": export_openvino_classifier(
            tiny_models["classifier"], root / "cache-less", stateful=False
        ),
        "split-labels": export_openvino_classifier(split, root / "split-labels", stateful=True),
        "split-source": split,
    }


@pytest.mark.parametrize("kind", ["stateful", "cache-less", "split-labels"])
def test_an_optimum_classifier_export_is_served_as_it_is(
    ov_classifiers: dict[str, Path], tiny_models: dict[str, Path], kind: str
) -> None:
    source = ov_classifiers["split-source"] if kind == "split-labels" else tiny_models["classifier"]
    classifier = OVClassifier(ov_classifiers[kind], "OpenVINO/flan-t5-small-ov", LoadOptions(threads=2))
    assert classifier._layout.stateful is (kind != "cache-less")
    assert classifier.single_step == [kind != "split-labels"] * 2
    assert classifier._layout.label_logits is (kind != "split-labels")  # the head cut to the labels
    # A cache-less decoder's cross-attention reads the encoder states directly (cross_attention.py);
    # a stateful one keeps its key/value projections in its cache, and runs as it is.
    assert classifier.absorbed_layers == (2 if kind == "cache-less" else 0)
    texts = [*pattern_texts(5), ""]
    references = [
        (
            reference_label_probs(source, category_prompt(text), CATEGORIES),
            reference_label_probs(source, priority_prompt(text), PRIORITIES),
        )
        for text in texts
    ]
    for _ in range(2):  # a stateful decoder must not carry its cache into the next request
        results = classifier.classify(texts)  # batched and padded
        for (cat, pri), result in zip(references, results, strict=True):
            assert np.abs(np.array([result.category_scores[c] for c in CATEGORIES]) - cat).max() < 1e-3
            assert np.abs(np.array([result.priority_scores[p] for p in PRIORITIES]) - pri).max() < 1e-3


def test_a_classifier_repo_from_the_hub_reports_its_real_precision(
    ov_classifiers: dict[str, Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    with FakeHub() as server:
        server.add_folder("OpenVINO/flan-t5-small-ov", ov_classifiers["stateful"], "4" * 40)
        registry = ModelRegistry(
            tiny_settings(
                tmp_path,
                tiny_models,
                classifier_model="OpenVINO/flan-t5-small-ov",
                classifier_revision="4" * 40,
                hub_endpoint=server.url,
            )
        )
        try:
            registry.start_loading([Role.CLASSIFIER])
            registry.wait(timeout=300)
            status = registry.status()[Role.CLASSIFIER]
            assert (status.state, status.source, status.precision) == (RoleState.READY, "hub", "fp32"), status
            (result,) = registry.get_classifier().classify(["Porch light turns on at sunset"])
            assert abs(sum(result.priority_scores.values()) - 1) < 1e-4
        finally:
            registry.close()


def test_a_decoder_graph_of_another_kind_is_refused_clearly(
    ov_classifiers: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "odd"
    shutil.copytree(ov_classifiers["cache-less"], folder)
    # The with-past decoder takes the cache as inputs: not a first-step decoder.
    for ext in ("xml", "bin"):
        (folder / f"openvino_decoder_with_past_model.{ext}").replace(folder / f"openvino_decoder_model.{ext}")
    with pytest.raises(ValueError, match="unsupported decoder graph"):
        OVClassifier(folder, "odd", LoadOptions(threads=1))
    (folder / "openvino_decoder_model.xml").unlink()
    with pytest.raises(ValueError, match=r"openvino_decoder_model\.xml missing"):
        OVClassifier(folder, "odd", LoadOptions(threads=1))
