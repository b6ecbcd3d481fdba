"""Inference on OpenVINO matches a PyTorch FP32 reference on tiny real-architecture models."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from homeiq_addon.models.labels import category_prompt, priority_prompt
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Role
from tests.tiny_models import build_classifier, tiny_settings

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [*pattern_texts(37), "", "ok", "light " * 400]


def reference_embeddings(folder: Path, texts: list[str]) -> np.ndarray:
    """sentence-transformers' recipe: masked mean pooling, then L2 normalisation."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"][..., None].float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


def test_embeddings_match_pytorch_mean_pooling(
    fp32_registry: ModelRegistry, tiny_models: dict[str, Path]
) -> None:
    embedder = fp32_registry.get_embedder()
    got = embedder.embed(TEXTS)
    ref = reference_embeddings(tiny_models["embedding"], TEXTS)
    assert got.shape == (len(TEXTS), embedder.dim) == ref.shape
    cos = (got * ref).sum(axis=1)
    assert cos.min() >= 0.999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)


def test_embeddings_do_not_depend_on_batch_neighbours(fp32_registry: ModelRegistry) -> None:
    """Padding to shape buckets must not leak into the pooled vector of a short text."""
    embedder = fp32_registry.get_embedder()
    alone = embedder.embed(["Turn on Kitchen light"])
    mixed = embedder.embed(["x " * 90, "Turn on Kitchen light", *pattern_texts(20)])
    assert float(alone[0] @ mixed[1]) > 0.9999
    assert embedder.embed([]).shape == (0, embedder.dim)


def reference_rerank(folder: Path, query: str, docs: list[str]) -> np.ndarray:
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    enc = tok(
        [query] * len(docs), docs, padding=True, truncation="only_second", max_length=512, return_tensors="pt"
    )
    with torch.no_grad():
        return torch.sigmoid(model(**enc).logits[:, 0]).numpy()


def test_reranker_scores_match_pytorch_cross_encoder(
    fp32_registry: ModelRegistry, tiny_models: dict[str, Path]
) -> None:
    reranker = fp32_registry.get_reranker()
    query = "save energy at night"
    docs = [*pattern_texts(20), "", "heating " * 600]
    got = reranker.score(query, docs)
    ref = reference_rerank(tiny_models["reranker"], query, docs)
    assert got.shape == (len(docs),)
    assert np.abs(got - ref).max() < 1e-4
    assert ((got > 0) & (got < 1)).all()


def test_reranker_encodes_a_real_text_pair_and_keeps_the_query(
    fp32_registry: ModelRegistry, tiny_models: dict[str, Path]
) -> None:
    reranker = fp32_registry.get_reranker()
    tok = AutoTokenizer.from_pretrained(tiny_models["reranker"])
    query, doc = "keep the house safe", "Lock Front door lock at 22:30 every day"
    (ids,) = reranker.encode_pairs(query, [doc])  # type: ignore[attr-defined]
    assert ids == tok(query, doc)["input_ids"]
    assert ids.count(tok.sep_token_id) == 3  # <s> q </s></s> d </s>: a pair, not a "[SEP]" string
    (long_ids,) = reranker.encode_pairs(query, ["door " * 2000])  # type: ignore[attr-defined]
    q_ids = tok(query)["input_ids"]
    assert len(long_ids) == reranker.max_length  # type: ignore[attr-defined]
    assert long_ids[: len(q_ids)] == q_ids  # the query survives truncation whole
    # A query longer than a whole pair is cut too (longest first): an error here would fail every
    # request coalesced into the same batch, and the API answered it with a 500.
    (cut,) = reranker.encode_pairs("word " * 2000, ["doc"])  # type: ignore[attr-defined]
    assert len(cut) == reranker.max_length and cut.count(tok.sep_token_id) == 3  # type: ignore[attr-defined]
    assert reranker.score("word " * 2000, ["doc", "another doc"]).shape == (2,)
    assert reranker.encode_pairs(query, [doc]) == [ids]  # type: ignore[attr-defined] # only_second again


@functools.cache
def _seq2seq_reference(folder: Path) -> tuple[Any, Any]:
    """The PyTorch tokenizer and model of a folder, loaded once (the folders do not change)."""
    return AutoTokenizer.from_pretrained(folder), AutoModelForSeq2SeqLM.from_pretrained(folder).eval()


def reference_label_probs(folder: Path, prompt: str, labels: tuple[str, ...]) -> np.ndarray:
    """Rank classification in PyTorch: log P(label tokens | prompt), softmax over labels."""
    tok, model = _seq2seq_reference(folder)
    enc = tok(prompt, return_tensors="pt", truncation=True, max_length=512)
    totals = []
    for label in labels:
        target = tok(label, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(**enc, labels=target).logits
        logp = torch.log_softmax(logits, dim=-1)[0]
        totals.append(float(logp.gather(1, target[0][:, None]).sum()))
    t = np.array(totals)
    p = np.exp(t - t.max())
    return p / p.sum()


@pytest.fixture(scope="module")
def split_label_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5 whose tokenizer splits some label words into several pieces."""
    return build_classifier(tmp_path_factory.mktemp("t5-split-labels"), seed=3, whole_labels=False)


@pytest.mark.parametrize("labels", ["single-token", "multi-token"])
def test_classifier_probabilities_match_pytorch_rank_classification(
    labels: str,
    data_dir: Path,
    tiny_models: dict[str, Path],
    split_label_classifier: Path,
) -> None:
    folder = tiny_models["classifier"] if labels == "single-token" else split_label_classifier
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models, classifier_model=str(folder)))
    registry.start_loading([Role.CLASSIFIER])
    registry.wait(timeout=120)
    classifier = registry.get_classifier()
    assert classifier.single_step == [labels == "single-token"] * 2  # type: ignore[attr-defined]
    # Single-token labels: the decoder's head is cut to the label tokens (label_head.py).
    assert classifier._layout.label_logits is (labels == "single-token")  # type: ignore[attr-defined]
    # Its cross-attention reads the encoder states directly (cross_attention.py), every layer.
    assert classifier.absorbed_layers == 2  # type: ignore[attr-defined]
    # Its prompts are long: length buckets twice as fine as the other roles' (144, not 160 tokens).
    assert next(classifier._plan([130])).length == 144  # type: ignore[attr-defined]
    texts = [*pattern_texts(5), ""]
    results = classifier.classify(texts)
    assert len(results) == len(texts)
    for text, result in zip(texts, results, strict=True):
        cat = reference_label_probs(folder, category_prompt(text), CATEGORIES)
        pri = reference_label_probs(folder, priority_prompt(text), PRIORITIES)
        got_cat = np.array([result.category_scores[c] for c in CATEGORIES])
        got_pri = np.array([result.priority_scores[p] for p in PRIORITIES])
        assert np.abs(got_cat - cat).max() < 1e-3
        assert np.abs(got_pri - pri).max() < 1e-3
        assert result.category == CATEGORIES[int(np.argmax(got_cat))]
        assert result.priority == PRIORITIES[int(np.argmax(got_pri))]
        assert abs(sum(result.category_scores.values()) - 1) < 1e-4
    registry.close()


SERVING_SCRIPT = """
import json, sys
from pathlib import Path
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.settings import Settings
from homeiq_addon.models.types import Role
s = Settings(data_dir=Path(sys.argv[1]), embedding_model=sys.argv[2], reranker_model=sys.argv[3],
             classifier_model=sys.argv[4], precision="fp32", threads=1)
r = ModelRegistry(s)
r.start_loading(list(Role)); r.wait(timeout=120)
r.get_embedder().embed(["turn on the light"])
r.get_reranker().score("light", ["turn on the light"])
r.get_classifier().classify(["turn on the light"])
r.close()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "optimum", "nncf"))
print(json.dumps({"states": [v.state.value for v in r.status().values()], "heavy": heavy}))
"""


def test_serving_process_never_imports_torch_transformers_or_optimum(
    data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    """Load and infer all three roles in a fresh process, then look at what it imported."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVING_SCRIPT,
            str(data_dir),
            str(tiny_models["embedding"]),
            str(tiny_models["reranker"]),
            str(tiny_models["classifier"]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'addon'}", "PATH": "/usr/bin:/bin", "TOKENIZERS_PARALLELISM": "false"},
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["states"] == ["ready", "ready", "ready"]
    assert report["heavy"] == []


def test_tiny_settings_are_full_profile(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, tiny_models)
    assert settings.profile == "full"
    assert settings.precision == "fp32"
