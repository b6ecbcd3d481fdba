"""Every error path answers a JSON body with the right status: 400 401 404 405 413 415 422 503."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from homeiq_addon.api import create_app
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role
from homeiq_addon.settings import BatchingOptions, Limits
from tests.addon.api_fixtures import AUTH, TOKEN, api_settings, checked_json

ClientFactory = Callable[..., Any]
SMALL = Limits(max_texts=4, max_chars=50, max_documents=3, max_body_kb=2)
BODY_ENDPOINTS = ["/v1/embed", "/v1/rerank", "/v1/classify", "/v1/suggest", "/v1/models/load"]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory,
    api_registry: ModelRegistry,
    fp32_data_dir: Path,
    tiny_models: dict[str, Path],
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(fp32_data_dir, tiny_models, limits=SMALL, batching=BatchingOptions(max_queue=1))
    yield await aiohttp_client(create_app(settings, api_registry, TOKEN))


async def _error(response: Any, status: int, code: str) -> str:
    body = await checked_json(response, status)
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


@pytest.mark.parametrize("path", ["/openapi.json", "/v1/models", "/v1/nowhere"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
async def test_requests_without_the_right_token_get_401(
    client: TestClient[Any, Any], path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)
    await _error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_posts_without_the_token_get_401_before_the_body_is_read(
    client: TestClient[Any, Any], path: str
) -> None:
    await _error(await client.post(path, data=b"{broken"), 401, "unauthorized")


async def test_unknown_path_is_404_json(client: TestClient[Any, Any]) -> None:
    await _error(await client.get("/v1/nothing", headers=AUTH), 404, "not_found")


async def test_wrong_method_is_405_json_with_allow(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v1/embed", headers=AUTH)
    await _error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_malformed_json_is_400(client: TestClient[Any, Any], path: str) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    await _error(await client.post(path, data=b'{"texts": [', headers=headers), 400, "malformed_json")


async def test_nan_is_not_json(client: TestClient[Any, Any]) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    body = b'{"patterns": [{"id": "a", "text": "t"}], "dedupe_threshold": NaN}'
    await _error(await client.post("/v1/suggest", data=body, headers=headers), 400, "malformed_json")


async def test_invalid_utf8_is_400(client: TestClient[Any, Any]) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    await _error(
        await client.post("/v1/embed", data=b'{"texts": ["\xff"]}', headers=headers), 400, "malformed_json"
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_is_415(client: TestClient[Any, Any], content_type: str) -> None:
    headers = {**AUTH, "Content-Type": content_type}
    await _error(
        await client.post("/v1/embed", data=b'{"texts": ["a"]}', headers=headers),
        415,
        "unsupported_media_type",
    )


async def test_a_body_over_the_limit_is_413(client: TestClient[Any, Any]) -> None:
    response = await client.post("/v1/embed", json={"texts": ["x" * 3000]}, headers=AUTH)
    message = await _error(response, 413, "payload_too_large")
    assert "2048" in message


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/embed", [], "object"),
        ("/v1/embed", {}, "texts"),
        ("/v1/embed", {"texts": []}, "texts"),
        ("/v1/embed", {"texts": ["a"] * 5}, "texts"),
        ("/v1/embed", {"texts": ["x" * 51]}, "texts[0]"),
        ("/v1/embed", {"texts": [""]}, "texts[0]"),
        ("/v1/embed", {"texts": ["ok", 3]}, "texts[1]"),
        ("/v1/embed", {"texts": "not a list"}, "texts"),
        ("/v1/embed", {"texts": ["a"], "encoding": "hex"}, "encoding"),
        ("/v1/embed", {"texts": ["a"], "extra": 1}, "extra"),
        ("/v1/rerank", {"query": "q"}, "documents"),
        ("/v1/rerank", {"query": "q", "documents": ["a"] * 4}, "documents"),
        ("/v1/rerank", {"query": "q", "documents": ["a"], "top_k": 0}, "top_k"),
        ("/v1/rerank", {"query": "q", "documents": ["a"], "top_k": True}, "top_k"),
        ("/v1/rerank", {"query": "", "documents": ["a"]}, "query"),
        ("/v1/classify", {"texts": [None]}, "texts[0]"),
        ("/v1/suggest", {"patterns": [{"id": "a"}]}, "patterns[0].text"),
        ("/v1/suggest", {"patterns": [{"id": 1, "text": "t"}]}, "patterns[0].id"),
        ("/v1/suggest", {"patterns": [{"id": "a", "text": "t"}], "known": ["k"] * 5}, "known"),
        (
            "/v1/suggest",
            {"patterns": [{"id": "a", "text": "t"}], "dedupe_threshold": 0.1},
            "dedupe_threshold",
        ),
        ("/v1/suggest", {"patterns": [{"id": "a", "text": "t"}, {"id": "a", "text": "u"}]}, "unique"),
        ("/v1/suggest", {"patterns": [{"id": "known:0", "text": "t"}]}, "known:"),
        ("/v1/models/load", {"roles": ["translator"]}, "roles[0]"),
    ],
)
async def test_valid_json_with_invalid_fields_is_422_naming_the_field(
    client: TestClient[Any, Any], path: str, body: Any, field: str
) -> None:
    message = await _error(await client.post(path, json=body, headers=AUTH), 422, "invalid_request")
    assert field in message


async def test_a_full_queue_answers_503_with_retry_after(
    client: TestClient[Any, Any], api_registry: ModelRegistry
) -> None:
    """Hold the inference thread; one batch waits in it, one request queues, the next is refused."""
    gate = threading.Event()
    blocker = api_registry.executor.submit(gate.wait, 30)
    try:
        first = asyncio.ensure_future(client.post("/v1/classify", json={"texts": ["a"]}, headers=AUTH))
        await asyncio.sleep(0.2)  # its batch is now queued on the held executor
        second = asyncio.ensure_future(client.post("/v1/classify", json={"texts": ["b"]}, headers=AUTH))
        await asyncio.sleep(0.2)  # waiting in the batcher's queue (max_queue=1)
        response = await client.post("/v1/classify", json={"texts": ["c"]}, headers=AUTH)
        await _error(response, 503, "overloaded")
        assert response.headers["Retry-After"] == "1"
    finally:
        gate.set()
        blocker.result(timeout=30)
    assert (await first).status == 200
    assert (await second).status == 200


async def test_a_model_still_loading_answers_503_with_retry_after(
    aiohttp_client: ClientFactory, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = api_settings(tmp_path, tiny_models, profile="lite")
    registry = ModelRegistry(settings)  # an empty cache: the model must be converted
    try:
        client = await aiohttp_client(create_app(settings, registry, TOKEN))
        response = await client.post("/v1/embed", json={"texts": ["a"]}, headers=AUTH)
        message = await _error(response, 503, "model_not_ready")
        assert int(response.headers["Retry-After"]) >= 1
        assert "embedding" in message
        # The request itself started the lazy load.
        health = await checked_json(await client.get("/health"), 200)
        assert health["models"]["embedding"]["state"] != "not_loaded"
    finally:
        registry.close()


async def test_a_model_that_failed_to_load_answers_503_with_the_reason(
    aiohttp_client: ClientFactory, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # looks like a model folder, but no model type
    settings = api_settings(tmp_path / "data", tiny_models, profile="lite", embedding_model=str(broken))
    registry = ModelRegistry(settings)
    try:
        registry.start_loading([Role.EMBEDDING])
        registry.wait(timeout=120)
        client = await aiohttp_client(create_app(settings, registry, TOKEN))
        response = await client.post("/v1/embed", json={"texts": ["a"]}, headers=AUTH)
        message = await _error(response, 503, "model_failed")
        assert "embedding" in message
        models = await checked_json(await client.get("/v1/models", headers=AUTH), 200)
        assert models["models"]["embedding"]["state"] == "error"
        assert models["models"]["embedding"]["error"]
    finally:
        registry.close()


async def test_suggest_before_any_model_is_ready_starts_every_role_at_once(
    aiohttp_client: ClientFactory, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = api_settings(tmp_path, tiny_models)
    registry = ModelRegistry(settings)
    try:
        client = await aiohttp_client(create_app(settings, registry, TOKEN))
        response = await client.post(
            "/v1/suggest", json={"patterns": [{"id": "a", "text": "t"}]}, headers=AUTH
        )
        await _error(response, 503, "model_not_ready")
        assert int(response.headers["Retry-After"]) >= 1
        health = await checked_json(await client.get("/health"), 200)
        assert {m["state"] for m in health["models"].values()}.isdisjoint({"not_loaded"})
    finally:
        registry.close()
