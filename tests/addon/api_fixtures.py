"""Helpers for the API tests: settings for the tiny models, and a JSON Schema checker.

It covers the keywords the add-on's OpenAPI document uses (type, enum, properties, required,
additionalProperties, items, anyOf, min/max, lengths); an unknown keyword fails loudly so a
schema can't silently go unchecked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import ClientResponse

from homeiq_addon.api.openapi import build_openapi
from homeiq_addon.api.schemas import build_request_schemas
from homeiq_addon.settings import Limits, Settings
from tests.tiny_models import tiny_fields

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}
_KNOWN = {
    "type", "enum", "properties", "required", "additionalProperties", "items", "anyOf", "minimum",
    "maximum", "minLength", "maxLength", "minItems", "maxItems", "description", "default", "$ref",
}  # fmt: skip


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def schema_errors(  # noqa: PLR0912 - one branch per JSON Schema keyword
    value: Any, schema: dict[str, Any], path: str = "$", root: dict[str, Any] | None = None
) -> list[str]:
    """Every place where ``value`` breaks ``schema`` (empty when it conforms)."""
    unknown = set(schema) - _KNOWN
    assert not unknown, f"schema keywords not understood by the test checker: {unknown}"
    if "$ref" in schema:
        assert root is not None
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return schema_errors(value, target, path, root)
    errors: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: {value!r} is not {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "anyOf" in schema and all(schema_errors(value, s, path, root) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, str) and not schema.get("minLength", 0) <= len(value) <= schema.get(
        "maxLength", len(value)
    ):
        errors.append(f"{path}: length {len(value)} out of bounds")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: {len(value)} items out of bounds")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += schema_errors(item, schema["items"], f"{path}[{i}]", root)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{path}.{key}", root)
            elif extra is False:
                errors.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, f"{path}.{key}", root)
    return errors


# ---- the server under test ----------------------------------------------------------------

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api_settings(data_dir: Path, models: dict[str, Path], **changes: Any) -> Settings:
    """Settings that serve the tiny local models (FP32, as the shared cache was converted)."""
    return Settings(**{**tiny_fields(data_dir, models), "token": TOKEN, **changes})


async def checked_json(response: ClientResponse, status: int) -> Any:
    """The response body, after checking status and the schema the OpenAPI document promises."""
    body = await response.json()
    assert response.status == status, body
    document = build_openapi(build_request_schemas(Limits()))
    if status >= 400:
        schema = document["components"]["schemas"]["Error"]
    else:
        path = response.url.path
        method = response.method.lower()
        schema = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"][
            "schema"
        ]
    errors = schema_errors(body, schema, root=document)
    assert errors == [], errors
    return body
