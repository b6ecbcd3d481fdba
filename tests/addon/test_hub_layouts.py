"""The model cache against tiny repositories laid out like the default models' hub repositories,
with the converters an image has (none in the default image; nncf and torch in the converter one).

- sentence-transformers' ``openvino/`` folder is served as published (FP32, static INT8), with no
  conversion and no download of the checkpoint or ONNX files beside it;
- ONNX rerankers and seq2seq classifiers become an FP32 IR through OpenVINO's ONNX frontend, with
  the same answers as PyTorch;
- variants a repository does not publish are made from the FP32 entry without downloading again:
  static INT8 with nncf (without it, or without torch for a checkpoint, the error says what to
  do), weight-only INT8 and FP16 weights (the classifier's BF16 candidate) in any image;
- a pinned commit is served from the cache without asking the hub, whatever happens upstream.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from homeiq_addon.models.cache import MANIFEST, TMP, ModelCache, write_manifest
from homeiq_addon.models.classifier import OVClassifier
from homeiq_addon.models.embedder import OVEmbedder
from homeiq_addon.models.labels import category_prompt
from homeiq_addon.models.layouts import plan_files
from homeiq_addon.models.loaded import LoadOptions
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.reranker import OVReranker
from homeiq_addon.models.types import (
    CATEGORIES,
    CHECKSUM_MISMATCH,
    CONVERTER_MISSING,
    DOWNLOAD_FAILED,
    NOT_FOUND,
    ModelCacheError,
    Role,
    RoleState,
)
from tests.addon.test_models_inference import (
    reference_embeddings,
    reference_label_probs,
    reference_rerank,
)
from tests.fake_hub import FakeHub, serving
from tests.hub_repos import ST_FP32, ST_INT8, default_layout_repos

pytestmark = pytest.mark.slow
EMBEDDER = "sentence-transformers/tiny-minilm"
RERANKER = "BAAI/tiny-reranker"
CLASSIFIER = "Xenova/tiny-flan-t5"
CHECKPOINT_ONLY = "someone/checkpoint-only"
SHA1, SHA2 = "1" * 40, "2" * 40
NONE: frozenset[str] = frozenset()  # the default image: neither nncf nor torch
OPTIONS = LoadOptions(threads=2, max_batch=8)
TEXTS = [*pattern_texts(12, seed=21), "", "light " * 300]


@pytest.fixture(scope="module")
def repos(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ids = {"embedding": EMBEDDER, "reranker": RERANKER, "classifier": CLASSIFIER}
    built = default_layout_repos(tiny_models, tmp_path_factory.mktemp("hub-repos"), ids)
    return built | {CHECKPOINT_ONLY: tiny_models["embedding"]}


@pytest.fixture
def hub(repos: dict[str, Path]) -> Iterator[FakeHub]:
    with serving(repos, SHA1) as server:
        yield server


class Seen:
    """A progress callback that remembers what it was told."""

    def __init__(self) -> None:
        self.states: list[tuple[RoleState, float | None]] = []

    def __call__(self, state: RoleState, progress: float | None) -> None:
        self.states.append((state, progress))


def cache(root: Path, hub: FakeHub, tools: frozenset[str] = NONE) -> ModelCache:
    return ModelCache(root / "models", hub_endpoint=hub.url, tools=tools)


def test_sentence_transformers_folder_is_served_as_published(
    hub: FakeHub, tmp_path: Path, repos: dict[str, Path], tiny_models: dict[str, Path]
) -> None:
    seen = Seen()
    fp32 = cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "fp32", seen, revision=SHA1)
    int8 = cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "int8", seen, revision=SHA1)

    for entry, published in ((fp32, ST_FP32), (int8, ST_INT8)):
        assert (entry.path / "openvino_model.xml").read_bytes() == (repos[EMBEDDER] / published).read_bytes()
        assert (entry.path / "openvino_model.bin").read_bytes() == (
            repos[EMBEDDER] / published.replace(".xml", ".bin")
        ).read_bytes()
    assert (fp32.info["precision"], int8.info["precision"]) == ("fp32", "int8")
    assert (fp32.revision, fp32.source) == (SHA1, "hub")
    # Only what serving needs: no checkpoint, no ONNX graph, no conversion.
    assert hub.requests["GET model.safetensors"] == hub.requests["GET onnx/model.onnx"] == 0
    assert RoleState.CONVERTING not in {state for state, _ in seen.states}
    downloading = [p for state, p in seen.states if state is RoleState.DOWNLOADING]
    assert downloading[0] == 0.0 and downloading[-1] == 1.0
    assert not [p for p in (tmp_path / "models" / TMP).iterdir() if p.name.startswith("download-")]

    embedder = OVEmbedder(fp32.path, EMBEDDER, OPTIONS)
    assert embedder.packed  # the published graph (hidden states out) runs packed too
    got, ref = embedder.embed(TEXTS), reference_embeddings(tiny_models["embedding"], TEXTS)
    assert (got * ref).sum(axis=1).min() >= 0.999  # mean pooling outside the published graph
    quantized = OVEmbedder(int8.path, EMBEDDER, OPTIONS)
    assert quantized.packed
    assert (quantized.embed(TEXTS) * ref).sum(axis=1).min() >= 0.9


def test_weight_only_int8_not_published_is_made_from_the_fp32_entry_in_the_default_image(
    hub: FakeHub, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    seen = Seen()
    entry = cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "int8w", seen, revision=SHA1)  # no nncf
    assert (entry.info["precision"], entry.info["derived_from"]) == ("int8-weights", "fp32")
    assert RoleState.CONVERTING in {state for state, _ in seen.states}
    assert sorted(p.name for p in entry.path.parent.iterdir()) == [f"{SHA1}-fp32", f"{SHA1}-int8w"]
    assert stored_types(entry.path / "openvino_model.xml") == {"table": {"u8"}, "weight": {"u8"}}
    got = OVEmbedder(entry.path, EMBEDDER, OPTIONS).embed(TEXTS)
    assert (got * reference_embeddings(tiny_models["embedding"], TEXTS)).sum(axis=1).min() >= 0.98
    before = hub.downloads()
    cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "int8w", Seen(), revision=SHA1)
    assert hub.downloads() == before


def test_onnx_reranker_is_converted_without_torch_and_scores_like_pytorch(
    hub: FakeHub, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    seen = Seen()
    entry = cache(tmp_path, hub).ensure(Role.RERANKER, RERANKER, "fp32", seen, revision=SHA1)
    assert RoleState.CONVERTING in {state for state, _ in seen.states}
    assert hub.requests["GET model.safetensors"] == 0
    assert (entry.info["source_format"], entry.info["precision"]) == ("onnx", "fp32")
    assert entry.info["embeddings"] == "word_embeddings.npy"  # the word table is out of the graph
    assert not list(entry.path.glob("*.onnx"))
    reranker = OVReranker(entry.path, RERANKER, OPTIONS)
    query = "save energy at night"
    np.testing.assert_allclose(
        reranker.score(query, TEXTS), reference_rerank(tiny_models["reranker"], query, TEXTS), atol=1e-4
    )

    # Static INT8, made from the cached FP32 entry in the default image (no torch, no nncf).
    int8 = cache(tmp_path, hub).ensure(Role.RERANKER, RERANKER, "int8", Seen(), revision=SHA1)
    assert hub.requests["GET onnx/model.onnx"] == 1  # derived from the cached FP32 entry
    assert int8.info["precision"] == "int8"
    graph = ov.Core().read_model(int8.path / "openvino_model.xml")
    matmuls = [op for op in graph.get_ops() if op.get_type_name() == "MatMul"]
    assert matmuls and all(
        op.input_value(0).get_node().get_type_name() == "FakeQuantize" for op in matmuls
    )  # every matrix product takes quantized activations ...
    assert stored_types(int8.path / "openvino_model.xml")["weight"] == {"i8"}  # ... and 8-bit weights
    scores = OVReranker(int8.path, RERANKER, OPTIONS).score(query, TEXTS)
    assert np.abs(scores - reranker.score(query, TEXTS)).max() < 0.1

    int8w = cache(tmp_path, hub).ensure(Role.RERANKER, RERANKER, "int8w", Seen(), revision=SHA1)  # no nncf
    assert stored_types(int8w.path / "openvino_model.xml") == {"table": {"u8"}, "weight": {"u8"}}
    assert np.load(int8w.path / int8w.info["embeddings"], mmap_mode="r").dtype == np.float16
    scores = OVReranker(int8w.path, RERANKER, OPTIONS).score(query, TEXTS)
    assert np.abs(scores - reranker.score(query, TEXTS)).max() < 0.05

    fp16 = cache(tmp_path, hub).ensure(Role.RERANKER, RERANKER, "fp16", Seen(), revision=SHA1)  # no nncf
    # Its word table is out of the graph; the position and token-type tables it looks up stay FP32.
    assert stored_types(fp16.path / "openvino_model.xml") == {"table": {"f32"}, "weight": {"f16"}}
    assert np.load(fp16.path / fp16.info["embeddings"], mmap_mode="r").dtype == np.float16
    scores = OVReranker(fp16.path, RERANKER, OPTIONS).score(query, TEXTS)
    assert np.abs(scores - reranker.score(query, TEXTS)).max() < 0.01


def test_onnx_seq2seq_classifier_is_converted_without_torch_and_answers_like_pytorch(
    hub: FakeHub, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    entry = cache(tmp_path, hub).ensure(Role.CLASSIFIER, CLASSIFIER, "fp32", Seen(), revision=SHA1)
    assert {"openvino_encoder_model.xml", "openvino_decoder_model.xml"} <= {
        p.name for p in entry.path.iterdir()
    }
    classifier = OVClassifier(entry.path, CLASSIFIER, OPTIONS)
    assert classifier.absorbed_layers == 2  # the ONNX decoder's cross-attention too (cross_attention.py)
    text = "Kitchen light turns on around 07:00 on weekdays"
    (result,) = classifier.classify([text])
    expected = reference_label_probs(tiny_models["classifier"], category_prompt(text, None), CATEGORIES)
    got = np.array([result.category_scores[c] for c in CATEGORIES])
    np.testing.assert_allclose(got, expected, atol=1e-4)

    # Weight-only INT8 (u8 weights) and static INT8 (the encoder's activations quantized too, i8
    # weights; the decoder weight-only): both made in the default image too, from the ONNX graphs.
    int8w = cache(tmp_path, hub).ensure(Role.CLASSIFIER, CLASSIFIER, "int8w", Seen(), revision=SHA1)
    assert int8w.info["precision"] == "int8-weights"
    for graph in ("openvino_encoder_model.xml", "openvino_decoder_model.xml"):
        assert stored_types(int8w.path / graph) == {"table": {"u8"}, "weight": {"u8"}}
    # Before 2026-12-06 a classifier's "int8" entry held weight-only graphs: such an entry is made again.
    old = int8w.path.with_name(int8w.path.name.removesuffix("-int8w") + "-int8")
    shutil.copytree(int8w.path, old)
    meta = json.loads((int8w.path / MANIFEST).read_text(encoding="utf-8"))
    write_manifest(old, {k: v for k, v in meta.items() if k not in ("files", "created")})
    int8 = cache(tmp_path, hub).ensure(Role.CLASSIFIER, CLASSIFIER, "int8", Seen(), revision=SHA1)
    assert (int8.path, int8.info["precision"]) == (old, "int8")
    encoder = ov.Core().read_model(int8.path / "openvino_encoder_model.xml")
    assert any(op.get_type_name() == "FakeQuantize" for op in encoder.get_ops())
    assert stored_types(int8.path / "openvino_encoder_model.xml")["weight"] == {"i8"}
    assert stored_types(int8.path / "openvino_decoder_model.xml") == {"table": {"u8"}, "weight": {"u8"}}
    for entry in (int8w, int8):
        (quantized,) = OVClassifier(entry.path, CLASSIFIER, OPTIONS).classify([text])
        assert (
            abs(quantized.category_scores[result.category] - result.category_scores[result.category]) < 0.05
        )

    # The BF16 candidate's graphs: the FP32 entry's with FP16 weights, made in the default image.
    seen = Seen()
    fp16 = cache(tmp_path, hub).ensure(Role.CLASSIFIER, CLASSIFIER, "fp16", seen, revision=SHA1)
    assert RoleState.CONVERTING in {state for state, _ in seen.states}
    assert (fp16.info["precision"], fp16.info["derived_from"]) == ("fp16", "fp32")
    assert hub.requests["GET onnx/encoder_model.onnx"] == 1  # halved from the cached FP32 entry
    for graph in ("openvino_encoder_model.xml", "openvino_decoder_model.xml"):
        # The word table stays FP32: a lookup in an FP16 table runs in FP16 under BF16 inference.
        assert stored_types(fp16.path / graph) == {"table": {"f32"}, "weight": {"f16"}}
    (halved,) = OVClassifier(fp16.path, CLASSIFIER, OPTIONS).classify([text])
    np.testing.assert_allclose(
        [halved.category_scores[c] for c in CATEGORIES],
        [result.category_scores[c] for c in CATEGORIES],
        atol=2e-3,
    )


def stored_types(graph: Path) -> dict[str, set[str]]:
    """The element types ``graph`` stores its matrices in: the tables its Gathers read rows of
    (word tables), and the other weights."""
    kinds: dict[str, set[str]] = {"table": set(), "weight": set()}
    for op in ov.Core().read_model(graph).get_ops():
        shape = op.get_output_partial_shape(0)
        if op.get_type_name() != "Constant" or len(shape) != 2 or min(d.get_length() for d in shape) <= 8:
            continue  # (small tables, and an 8-bit weight's scales and zero points: one per row)
        looked_up = any(
            t.get_node().get_type_name() == "Gather" and t.get_index() == 0
            for t in _decompressed(op).output(0).get_target_inputs()
        )
        kinds["table" if looked_up else "weight"].add(op.get_output_element_type(0).get_type_name())
    return kinds


def _decompressed(constant: ov.Node) -> ov.Node:
    """The node that gives a weight stored in 8 or 16 bits back in FP32 (the constant itself when
    it is stored in FP32)."""
    node = constant
    while True:
        users = [t.get_node() for t in node.output(0).get_target_inputs()]
        if len(users) != 1 or users[0].get_type_name() not in ("Convert", "Subtract", "Multiply"):
            return node
        node = users[0]


def test_checkpoint_only_repository_needs_the_converter(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelCacheError) as missing:
        cache(tmp_path, hub).ensure(Role.EMBEDDING, CHECKPOINT_ONLY, "fp32", Seen(), revision=SHA1)
    assert missing.value.code == CONVERTER_MISSING
    message = str(missing.value)
    assert CHECKPOINT_ONLY in message and "OpenVINO or ONNX" in message and "WITH_CONVERTER=true" in message
    assert hub.downloads() == 0


def test_pinned_commit_is_served_from_the_cache_whatever_happens_upstream(
    hub: FakeHub, tmp_path: Path, repos: dict[str, Path]
) -> None:
    first = cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "fp32", Seen(), revision=SHA1)
    changed = tmp_path / "upstream"
    shutil.copytree(repos[EMBEDDER], changed)
    (changed / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128}))
    hub.add_folder(EMBEDDER, changed, SHA2)  # a new commit on main
    before = sum(hub.requests.values())

    again = cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "fp32", Seen(), revision=SHA1)
    assert again.path == first.path and again.revision == SHA1
    assert sum(hub.requests.values()) == before  # not one request: no download, no look-up

    # Following main is asking for it: the new commit is fetched, the old entry pruned.
    latest = cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "fp32", Seen(), revision="main")
    assert latest.revision == SHA2
    assert json.loads((latest.path / "tokenizer_config.json").read_text()) == {"model_max_length": 128}
    assert sorted(p.name for p in latest.path.parent.iterdir()) == [f"{SHA2}-fp32"]


def test_an_unknown_commit_is_a_clear_error(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelCacheError) as err:
        cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "fp32", Seen(), revision="3" * 40)
    assert err.value.code == NOT_FOUND
    assert f"revision {'3' * 40} does not exist in {EMBEDDER}" in str(err.value)


@pytest.mark.parametrize(
    ("fault", "code", "tokenizer_fetched"),
    [("truncate", DOWNLOAD_FAILED, 1), ("corrupt", CHECKSUM_MISMATCH, 2)],
    ids=["broken-transfer", "corrupt-file"],
)
def test_a_failed_download_is_an_error_and_the_next_try_repairs_it(
    hub: FakeHub, tmp_path: Path, fault: str, code: str, tokenizer_fetched: int
) -> None:
    """A broken transfer keeps what arrived (the next try resumes it); a file that fails its
    checksum discards the download, which is then fetched whole again."""
    big = "openvino/openvino_model.bin"
    hub.faults[(EMBEDDER, big)] = fault
    with pytest.raises(ModelCacheError) as err:
        cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "fp32", Seen(), revision=SHA1)
    assert err.value.code == code
    assert not list((tmp_path / "models" / "embedding").glob("*/*"))  # no entry from a failed download
    del hub.faults[(EMBEDDER, big)]
    entry = cache(tmp_path, hub).ensure(Role.EMBEDDING, EMBEDDER, "fp32", Seen(), revision=SHA1)
    assert hub.requests["GET tokenizer.json"] == tokenizer_fetched
    assert (entry.path / "openvino_model.bin").stat().st_size > 0


ST_BIN, ST_INT8_BIN = ST_FP32.replace(".xml", ".bin"), ST_INT8.replace(".xml", ".bin")
LAYOUTS = [
    (["openvino_model.xml", "openvino_model.bin", "tokenizer.json"], Role.RERANKER, "int8", "openvino", None),
    ([ST_FP32, ST_BIN, ST_INT8, ST_INT8_BIN], Role.EMBEDDING, "int8", "openvino", ST_INT8),
    ([ST_FP32, ST_BIN, "onnx/model.onnx"], Role.EMBEDDING, "fp32", "openvino", ST_FP32),
    ([ST_FP32, ST_BIN], Role.EMBEDDING, "int8", "derived", None),
    (["onnx/model.onnx", "onnx/model.onnx_data", "model.safetensors"], Role.RERANKER, "fp32", "onnx", None),
    (["onnx/model.onnx"], Role.RERANKER, "int8w", "reduced", None),
    (["onnx/model.onnx"], Role.RERANKER, "int8", "derived", None),
    ([ST_FP32, ST_BIN, ST_INT8, ST_INT8_BIN], Role.EMBEDDING, "int8w", "reduced", None),
    (["onnx/encoder_model.onnx", "onnx/decoder_model.onnx"], Role.CLASSIFIER, "int8", "derived", None),
    (["onnx/encoder_model.onnx", "onnx/decoder_model.onnx"], Role.CLASSIFIER, "int8w", "reduced", None),
    (["onnx/encoder_model.onnx", "onnx/decoder_model.onnx"], Role.CLASSIFIER, "fp32", "onnx", None),
    (["model.safetensors", "config.json"], Role.CLASSIFIER, "fp32", "checkpoint", None),
    # Static and weight-only INT8 are made from the FP32 entry, whatever its source.
    (["model.safetensors", "config.json"], Role.EMBEDDING, "int8", "derived", None),
    (["model.safetensors", "config.json"], Role.CLASSIFIER, "int8", "derived", None),
    (["model.safetensors", "config.json"], Role.RERANKER, "int8w", "reduced", None),
    # FP16 weights: made from the FP32 entry, whatever that is built from; an export as it is.
    ([ST_FP32, ST_BIN, ST_INT8, ST_INT8_BIN], Role.EMBEDDING, "fp16", "reduced", None),
    (["onnx/encoder_model.onnx", "onnx/decoder_model.onnx"], Role.CLASSIFIER, "fp16", "reduced", None),
    (["model.safetensors", "config.json"], Role.CLASSIFIER, "fp16", "reduced", None),
    (
        [
            "openvino_encoder_model.xml",
            "openvino_encoder_model.bin",
            "openvino_decoder_model.xml",
            "openvino_decoder_model.bin",
        ],
        Role.CLASSIFIER,
        "fp16",
        "openvino",
        None,
    ),
]


@pytest.mark.parametrize(("names", "role", "precision", "kind", "picked"), LAYOUTS)
def test_what_is_fetched_for_each_layout(
    names: list[str], role: Role, precision: str, kind: str, picked: str | None
) -> None:
    plan = plan_files(names, role, precision)
    assert plan.kind == kind
    assert plan.needs == ("torch" if kind == "checkpoint" else None)  # variants need OpenVINO alone
    if picked is not None:
        assert plan.files[picked] == "openvino_model.xml"
    if kind == "onnx" and role is Role.RERANKER:
        assert plan.files == {"onnx/model.onnx": "model.onnx", "onnx/model.onnx_data": "model.onnx_data"}
    with pytest.raises(ModelCacheError):
        plan_files(["README.md", "pytorch_model.msgpack"], role, precision)
