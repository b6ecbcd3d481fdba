"""/openapi.json describes exactly the registered routes and the schemas the handlers enforce."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from homeiq_addon.api import create_app
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.settings import Limits
from tests.addon.api_fixtures import AUTH, TOKEN, api_settings, checked_json, schema_errors

ClientFactory = Callable[..., Any]
LIMITS = Limits(max_texts=7, max_chars=99, max_documents=5, max_body_kb=64)


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory,
    api_registry: ModelRegistry,
    fp32_data_dir: Path,
    tiny_models: dict[str, Path],
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(fp32_data_dir, tiny_models, limits=LIMITS)
    yield await aiohttp_client(create_app(settings, api_registry, TOKEN))


@pytest.fixture
async def document(client: TestClient[Any, Any]) -> dict[str, Any]:
    body: dict[str, Any] = await checked_json(await client.get("/openapi.json", headers=AUTH), 200)
    return body


def minimal_instance(schema: dict[str, Any]) -> Any:  # noqa: PLR0911 - one branch per JSON type
    """The smallest value the schema accepts (required fields only, shortest lengths)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return minimal_instance(schema["anyOf"][0])
    kind = schema["type"]
    if kind == "null":
        return None
    if kind == "object":
        return {key: minimal_instance(schema["properties"][key]) for key in schema.get("required", [])}
    if kind == "array":
        return [minimal_instance(schema["items"]) for _ in range(max(1, schema.get("minItems", 0)))]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 0))
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "number":
        return schema.get("minimum", 0.5)
    raise AssertionError(f"no instance for {schema}")


def _request_schemas(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        path: op["requestBody"]["content"]["application/json"]["schema"]
        for path, ops in document["paths"].items()
        for op in ops.values()
        if "requestBody" in op
    }


async def test_openapi_needs_the_token(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/openapi.json")).status == 401


async def test_documented_operations_are_exactly_the_registered_routes(
    client: TestClient[Any, Any], document: dict[str, Any]
) -> None:
    registered = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert documented == registered
    assert document["openapi"].startswith("3.1")
    for path, ops in document["paths"].items():
        for op in ops.values():
            public = op.get("security") == []
            assert public == (path == "/health"), path
            assert public or "401" in op["responses"]


async def test_documented_limits_are_the_configured_ones(document: dict[str, Any]) -> None:
    schemas = _request_schemas(document)
    assert schemas["/v1/embed"]["properties"]["texts"]["maxItems"] == LIMITS.max_texts
    assert schemas["/v1/embed"]["properties"]["texts"]["items"]["maxLength"] == LIMITS.max_chars
    assert schemas["/v1/rerank"]["properties"]["documents"]["maxItems"] == LIMITS.max_documents
    assert schemas["/v1/suggest"]["properties"]["patterns"]["maxItems"] == LIMITS.max_texts
    assert schemas["/v1/suggest"]["properties"]["known"]["minItems"] == 0


async def test_the_smallest_documented_request_is_accepted_by_each_handler(
    client: TestClient[Any, Any], document: dict[str, Any]
) -> None:
    for path, schema in _request_schemas(document).items():
        body = minimal_instance(schema)
        assert schema_errors(body, schema) == []
        response = await client.post(path, json=body, headers=AUTH)
        status = 202 if path == "/v1/models/load" else 200
        await checked_json(response, status)


async def test_bodies_the_document_rejects_the_handlers_reject_too(
    client: TestClient[Any, Any], document: dict[str, Any]
) -> None:
    for path, schema in _request_schemas(document).items():
        valid = minimal_instance(schema)
        variants: list[Any] = [{**valid, "unexpected": 1}]
        variants += [{k: v for k, v in valid.items() if k != key} for key in schema.get("required", [])]
        for name, prop in schema["properties"].items():
            if prop.get("type") == "array" and "maxItems" in prop:
                variants.append({**valid, name: [minimal_instance(prop["items"])] * (prop["maxItems"] + 1)})
            if prop.get("type") == "integer":
                variants.append({**valid, name: prop["maximum"] + 1})
        for body in variants:
            assert schema_errors(body, schema), (path, body)
            response = await client.post(path, json=body, headers=AUTH)
            assert response.status == 422, (path, body, await response.text())
