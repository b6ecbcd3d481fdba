"""What the converter really produces: static INT8 encoders, weight-only flan-t5, the XLM-R table
outside the graph."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role, RoleState
from tests.tiny_models import tiny_settings


def op_types(xml: Path) -> Counter[str]:
    return Counter(op.get_type_name() for op in ov.Core().read_model(xml).get_ops())


def test_reranker_graph_takes_embeddings_not_token_ids(
    fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    """The word-embedding table must stay outside the compiled graph (memory trap)."""
    (entry,) = (fp32_data_dir / "models" / "reranker").glob("*/*-fp32")
    model = ov.Core().read_model(entry / "openvino_model.xml")
    assert {p.get_any_name() for p in model.inputs} == {"inputs_embeds", "attention_mask"}
    vocab = json.loads((tiny_models["reranker"] / "config.json").read_text())["vocab_size"]
    table = np.load(entry / "word_embeddings.npy", mmap_mode="r")
    assert table.shape[0] == vocab
    big_constants = [
        op
        for op in model.get_ops()
        if op.get_type_name() == "Constant"
        and op.get_output_partial_shape(0).rank.get_length() == 2
        and op.get_output_partial_shape(0)[0].get_length() == vocab
    ]
    assert big_constants == []


@pytest.mark.slow
def test_int8_conversion_quantizes_activations_and_stays_close_to_fp32(
    tmp_path: Path, tiny_models: dict[str, Path], fp32_registry: ModelRegistry
) -> None:
    """Static INT8 (FakeQuantize on activations) for the encoders, INT8 weights for flan-t5."""
    registry = ModelRegistry(tiny_settings(tmp_path, tiny_models, precision="int8"))
    registry.start_loading(list(Role))
    registry.wait(timeout=600)
    status = registry.status()
    assert all(s.state is RoleState.READY for s in status.values()), status
    models = tmp_path / "models"
    (emb,) = (models / "embedding").glob("*/*-int8")
    (rr,) = (models / "reranker").glob("*/*-int8")
    (cls,) = (models / "classifier").glob("*/*-int8")
    assert op_types(emb / "openvino_model.xml")["FakeQuantize"] >= 10
    assert op_types(rr / "openvino_model.xml")["FakeQuantize"] >= 10
    for part in ("encoder", "decoder"):  # flan-t5: weight-only, u8 weights decompressed
        ops = op_types(cls / f"openvino_{part}_model.xml")
        assert ops["FakeQuantize"] == 0 and ops["Convert"] > 0, part
    assert status[Role.CLASSIFIER].precision == "int8-weights"

    texts = pattern_texts(64, seed=4)
    cos = (registry.get_embedder().embed(texts) * fp32_registry.get_embedder().embed(texts)).sum(axis=1)
    assert cos.mean() > 0.98
    q8 = registry.get_reranker().score("save energy", texts)
    q32 = fp32_registry.get_reranker().score("save energy", texts)
    assert np.abs(q8 - q32).max() < 0.05
    (c8,) = registry.get_classifier().classify(texts[:1])
    assert abs(sum(c8.category_scores.values()) - 1) < 1e-4
    got = registry.get_classifier().classify(texts[:16])
    ref = fp32_registry.get_classifier().classify(texts[:16])
    deltas = [
        abs(a.priority_scores[k] - b.priority_scores[k])
        for a, b in zip(got, ref, strict=True)
        for k in a.priority_scores
    ]
    assert max(deltas) < 0.02
    registry.close()
