"""Every endpoint of the API, served by the real aiohttp server on loopback with tiny models."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from homeiq_addon.api import create_app
from homeiq_addon.api.context import BATCHERS_KEY
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Role
from homeiq_addon.pipeline import DEFAULT_QUERY
from tests.addon.api_fixtures import AUTH, TOKEN, api_settings, checked_json

ClientFactory = Callable[..., Any]

PATTERNS = [
    {"id": "p1", "text": "Turn on the kitchen light at 07:00 on weekdays"},
    {"id": "p2", "text": "Turn on the kitchen light at 07:00 on weekdays"},  # exact duplicate of p1
    {"id": "p3", "text": "Close the garage door when everyone has left"},
    {"id": "p4", "text": "Lower the heating to 17 degrees at 23:00"},
    {"id": "p5", "text": "Switch off the TV when nobody is in the living room for 30 minutes"},
]


@pytest.fixture(scope="module")
def lite_registry(fp32_data_dir: Path, tiny_models: dict[str, Path]) -> Iterator[ModelRegistry]:
    registry = ModelRegistry(api_settings(fp32_data_dir, tiny_models, profile="lite"))
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=300)
    yield registry
    registry.close()


@pytest.fixture
async def lite(
    aiohttp_client: ClientFactory,
    lite_registry: ModelRegistry,
    fp32_data_dir: Path,
    tiny_models: dict[str, Path],
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(fp32_data_dir, tiny_models, profile="lite")
    yield await aiohttp_client(create_app(settings, lite_registry, TOKEN))


async def test_server_listens_on_loopback_only(full: TestClient[Any, Any]) -> None:
    assert full.server.host == "127.0.0.1"


async def test_health_needs_no_token_and_reveals_no_secret(full: TestClient[Any, Any]) -> None:
    response = await full.get("/health")
    body = await checked_json(response, 200)
    assert body["status"] == "ok"
    assert body["models"]["embedding"]["state"] == "ready"
    assert TOKEN not in await response.text()


async def test_models_reports_each_role_and_the_limits(full: TestClient[Any, Any]) -> None:
    body = await checked_json(await full.get("/v1/models", headers=AUTH), 200)
    assert body["profile"] == "full"
    assert set(body["models"]) == {"embedding", "reranker", "classifier"}
    for role in body["models"].values():
        assert role["state"] == "ready"
        assert role["precision"] == "fp32"
        assert role["source"] == "local"
        assert role["bytes_on_disk"] > 0
        assert role["load_seconds"] >= 0
        assert role["error"] is None
    assert body["limits"] == {
        "max_texts": 256,
        "max_chars": 2000,
        "max_documents": 256,
        "max_body_bytes": 1048576,
    }


async def test_load_starts_the_requested_roles_and_answers_202(full: TestClient[Any, Any]) -> None:
    body = await checked_json(
        await full.post("/v1/models/load", json={"roles": ["reranker"]}, headers=AUTH), 202
    )
    assert body["loading"] == ["reranker"]
    body = await checked_json(await full.post("/v1/models/load", headers=AUTH), 202)
    assert body["loading"] == ["embedding", "reranker", "classifier"]


async def test_load_in_lite_profile_loads_the_embedding_model_for_every_role(
    lite: TestClient[Any, Any],
) -> None:
    body = await checked_json(
        await lite.post("/v1/models/load", json={"roles": ["reranker", "classifier"]}, headers=AUTH), 202
    )
    assert body["loading"] == ["embedding"]
    assert set(body["models"]) == {"embedding"}


async def test_embed_returns_normalised_vectors_equal_to_the_model(
    full: TestClient[Any, Any], api_registry: ModelRegistry
) -> None:
    texts = ["Turn on the porch light at sunset", "Lock the front door at 23:00"]
    body = await checked_json(await full.post("/v1/embed", json={"texts": texts}, headers=AUTH), 200)
    vectors = np.asarray(body["embeddings"], dtype=np.float32)
    direct = api_registry.get_embedder().embed(texts)
    assert body["dim"] == vectors.shape[1] == direct.shape[1]
    assert body["model"] == str(Path(api_registry.settings.embedding_model))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, direct, atol=1e-6)


async def test_embed_base64_is_little_endian_float32_per_vector(full: TestClient[Any, Any]) -> None:
    texts = ["Turn on the porch light at sunset", "Lock the front door at 23:00"]
    as_float = await checked_json(await full.post("/v1/embed", json={"texts": texts}, headers=AUTH), 200)
    as_b64 = await checked_json(
        await full.post("/v1/embed", json={"texts": texts, "encoding": "base64"}, headers=AUTH), 200
    )
    assert as_b64["encoding"] == "base64"
    decoded = np.stack([np.frombuffer(base64.b64decode(s), dtype="<f4") for s in as_b64["embeddings"]])
    # Both carry the exact float32 values (numbers as the shortest text that reads back the same).
    np.testing.assert_array_equal(decoded, np.asarray(as_float["embeddings"], dtype=np.float32))


async def test_concurrent_embed_requests_are_coalesced_and_answered_correctly(
    full: TestClient[Any, Any], api_registry: ModelRegistry
) -> None:
    texts = [f"Turn on light number {i} in the hallway" for i in range(16)]
    responses = await asyncio.gather(
        *(full.post("/v1/embed", json={"texts": [t]}, headers=AUTH) for t in texts)
    )
    vectors = np.asarray([(await checked_json(r, 200))["embeddings"][0] for r in responses], dtype=np.float32)
    np.testing.assert_allclose(vectors, api_registry.get_embedder().embed(texts), atol=1e-5)
    stats = full.app[BATCHERS_KEY].embed.stats
    assert stats.requests == 16
    assert stats.batches < 16  # some requests shared a batch
    assert stats.largest_batch > 1


async def test_rerank_orders_documents_best_first_with_the_model_scores(
    full: TestClient[Any, Any], api_registry: ModelRegistry
) -> None:
    query = "save energy at night"
    documents = [p["text"] for p in PATTERNS]
    body = await checked_json(
        await full.post("/v1/rerank", json={"query": query, "documents": documents}, headers=AUTH), 200
    )
    direct = api_registry.get_reranker().score(query, documents)
    assert sorted(r["index"] for r in body["results"]) == list(range(len(documents)))
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    for result in body["results"]:
        assert result["score"] == pytest.approx(float(direct[result["index"]]), abs=1e-5)
    assert body["model"] == api_registry.get_reranker().model_id


async def test_rerank_top_k_and_concurrent_queries_stay_apart(full: TestClient[Any, Any]) -> None:
    documents = [p["text"] for p in PATTERNS]
    requests = [{"query": q, "documents": documents, "top_k": 2} for q in ("light", "door", "heating")]
    responses = await asyncio.gather(*(full.post("/v1/rerank", json=r, headers=AUTH) for r in requests))
    bodies = [await checked_json(r, 200) for r in responses]
    alone = [await checked_json(await full.post("/v1/rerank", json=r, headers=AUTH), 200) for r in requests]
    assert all(len(b["results"]) == 2 for b in bodies)
    for together, single in zip(bodies, alone, strict=True):
        assert [r["index"] for r in together["results"]] == [r["index"] for r in single["results"]]


async def test_classify_returns_labels_with_probabilities(
    full: TestClient[Any, Any], api_registry: ModelRegistry
) -> None:
    texts = [p["text"] for p in PATTERNS]
    body = await checked_json(await full.post("/v1/classify", json={"texts": texts}, headers=AUTH), 200)
    direct = api_registry.get_classifier().classify(texts)
    assert len(body["results"]) == len(texts)
    for result, expected in zip(body["results"], direct, strict=True):
        assert result["category"] == expected.category
        assert result["priority"] == expected.priority
        assert sum(result["scores"][c] for c in CATEGORIES) == pytest.approx(1.0, abs=1e-4)
        assert sum(result["scores"][p] for p in PRIORITIES) == pytest.approx(1.0, abs=1e-4)
    assert body["model"] == api_registry.get_classifier().model_id


async def test_suggest_drops_duplicates_ranks_and_classifies(
    full: TestClient[Any, Any], api_registry: ModelRegistry
) -> None:
    # Tiny random-weight models put every sentence at cosine 0.8-0.96: only copies are duplicates
    # here (the real model's paraphrase behaviour is pinned in test_pipeline.py).
    request = {"patterns": PATTERNS, "known": [PATTERNS[3]["text"]], "top_k": 2, "dedupe_threshold": 0.999}
    body = await checked_json(await full.post("/v1/suggest", json=request, headers=AUTH), 200)
    assert body["profile"] == "full"
    assert body["query"] == DEFAULT_QUERY
    assert body["models"] == {
        "embedding": api_registry.get_embedder().model_id,
        "reranker": api_registry.get_reranker().model_id,
        "classifier": api_registry.get_classifier().model_id,
    }
    duplicates = {d["id"]: d["duplicate_of"] for d in body["duplicates"]}
    assert duplicates["p2"] == "p1"
    assert duplicates["p4"] == "known:0"
    kept = [p for p in PATTERNS if p["id"] not in duplicates]
    assert len(body["suggestions"]) == min(2, len(kept))
    ids = [s["id"] for s in body["suggestions"]]
    assert not set(ids) & set(duplicates)
    # The ranking is the reranker's, against the default query.
    direct = api_registry.get_reranker().score(DEFAULT_QUERY, [p["text"] for p in kept])
    best = [kept[i]["id"] for i in np.argsort(-direct, kind="stable")[:2]]
    assert ids == best
    scores = [s["score"] for s in body["suggestions"]]
    assert scores == sorted(scores, reverse=True)


async def test_suggest_can_leave_telling_patterns_apart_to_the_client(full: TestClient[Any, Any]) -> None:
    request = {
        "patterns": PATTERNS,
        "known": [PATTERNS[3]["text"]],
        "dedupe_threshold": 0.999,
        "dedupe": "known",
    }
    body = await checked_json(await full.post("/v1/suggest", json=request, headers=AUTH), 200)
    assert {d["id"]: d["duplicate_of"] for d in body["duplicates"]} == {"p4": "known:0"}
    assert "p2" in {s["id"] for s in body["suggestions"]}  # a copy of p1, kept as the client asked
    bad = await full.post("/v1/suggest", json={**request, "dedupe": "siblings"}, headers=AUTH)
    assert (await checked_json(bad, 422))["error"]["code"] == "invalid_request"


async def test_suggest_uses_the_given_query_and_threshold(full: TestClient[Any, Any]) -> None:
    body = await checked_json(
        await full.post(
            "/v1/suggest",
            json={"patterns": PATTERNS, "query": "security", "dedupe_threshold": 1.0, "top_k": 10},
            headers=AUTH,
        ),
        200,
    )
    assert body["query"] == "security"
    # Threshold 1.0: only exact copies are duplicates.
    assert [d["id"] for d in body["duplicates"]] == ["p2"]
    assert len(body["suggestions"]) == 4


async def test_lite_profile_says_which_model_served_each_step(lite: TestClient[Any, Any]) -> None:
    body = await checked_json(await lite.post("/v1/suggest", json={"patterns": PATTERNS}, headers=AUTH), 200)
    assert body["profile"] == "lite"
    embedding_id = body["models"]["embedding"]
    assert body["models"]["reranker"] == f"cosine:{embedding_id}"
    assert body["models"]["classifier"] == f"nearest-exemplar:{embedding_id}"
    assert {s["category"] for s in body["suggestions"]} <= set(CATEGORIES)
    health = await checked_json(await lite.get("/health"), 200)
    assert health["profile"] == "lite"
    rerank = await checked_json(
        await lite.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"]}, headers=AUTH), 200
    )
    assert rerank["model"].startswith("cosine:")
