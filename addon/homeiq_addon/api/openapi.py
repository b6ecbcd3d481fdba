"""The OpenAPI 3.1 document, generated from the endpoint table and the request schemas."""

from __future__ import annotations

from typing import Any

from homeiq_addon import API_VERSION, __version__
from homeiq_addon.api.routes import ENDPOINTS
from homeiq_addon.api.schemas import RequestSchemas, to_json_schema
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Role, RoleState
from homeiq_addon.settings import PROFILES

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}
_ROLE_NAMES = [role.value for role in Role]
_LABEL_SCORES = {
    "type": "object",
    "properties": {label: {"type": "number"} for label in (*CATEGORIES, *PRIORITIES)},
    "additionalProperties": False,
}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def _per_role(schema: dict[str, Any]) -> dict[str, Any]:
    """An object keyed by role name (the runtime may report fewer roles in a profile)."""
    return {"type": "object", "properties": dict.fromkeys(_ROLE_NAMES, schema), "additionalProperties": False}


ROLE_REPORT = _object(
    {
        "id": {"type": "string"},
        "state": {"enum": [state.value for state in RoleState]},
        "revision": _NULLABLE_STR,
        "precision": _NULLABLE_STR,
        "precision_reason": _NULLABLE_STR,
        "source": _NULLABLE_STR,
        "bytes_on_disk": {"type": ["integer", "null"]},
        "load_seconds": _NULLABLE_NUM,
        "progress": _NULLABLE_NUM,
        "error": _NULLABLE_STR,
        "error_code": _NULLABLE_STR,
    }
)
_LIMITS = _object(
    {k: {"type": "integer"} for k in ("max_texts", "max_chars", "max_documents", "max_body_bytes")}
)
_BATCH_STATS = _object(
    {k: {"type": "integer"} for k in ("requests", "batches", "items", "largest_batch", "rejected")}
)
_API_VERSION = {"type": "string", "description": "The HTTP contract's version (major.minor)."}
_MODELS_PROPERTIES: dict[str, Any] = {
    "version": {"type": "string"},
    "api_version": _API_VERSION,
    "profile": {"enum": list(PROFILES)},
    "device": {"type": "string"},
    "precision": {"type": "string"},
    "models": _per_role(ROLE_REPORT),
    "limits": _LIMITS,
    "batching": _object(
        {
            "max_batch_texts": {"type": "integer"},
            "max_wait_ms": {"type": "number"},
            "max_queue": {"type": "integer"},
            "stats": {"type": "object", "additionalProperties": _BATCH_STATS},
        },
        required=["max_batch_texts", "max_wait_ms", "max_queue"],
    ),
    "dedupe_threshold": {"type": "number"},
}
_PRIORITY_REASON = {
    "type": "string",
    "description": "Why this priority, in a short sentence for the user (API 1.1).",
}
_CLASSIFICATION = _object(
    {
        "category": {"enum": list(CATEGORIES)},
        "priority": {"enum": list(PRIORITIES)},
        "priority_reason": _PRIORITY_REASON,
        "scores": _LABEL_SCORES,
    }
)

RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "/health": _object(
        {
            "status": {"enum": ["ok"]},
            "version": {"type": "string"},
            "api_version": _API_VERSION,
            "profile": {"enum": list(PROFILES)},
            "models": _per_role(
                _object({"state": {"enum": [s.value for s in RoleState]}, "id": {"type": "string"}})
            ),
        }
    ),
    "/openapi.json": {"type": "object", "required": ["openapi", "paths"]},
    "/v1/models": _object(_MODELS_PROPERTIES),
    "/v1/models/load": _object(
        {"loading": {"type": "array", "items": {"enum": _ROLE_NAMES}}, **_MODELS_PROPERTIES},
        required=["loading", *(k for k in _MODELS_PROPERTIES if k != "batching")],
    ),
    "/v1/embed": _object(
        {
            "model": {"type": "string"},
            "dim": {"type": "integer"},
            "encoding": {"enum": ["float", "base64"]},
            "embeddings": {
                "type": "array",
                "items": {"anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}]},
            },
        }
    ),
    "/v1/rerank": _object(
        {
            "model": {"type": "string"},
            "results": {
                "type": "array",
                "items": _object({"index": {"type": "integer"}, "score": {"type": "number"}}),
            },
        }
    ),
    "/v1/classify": _object(
        {"model": {"type": "string"}, "results": {"type": "array", "items": _CLASSIFICATION}}
    ),
    "/v1/suggest": _object(
        {
            "profile": {"enum": list(PROFILES)},
            "query": {"type": "string"},
            "models": _object({name: {"type": "string"} for name in _ROLE_NAMES}),
            "suggestions": {
                "type": "array",
                "items": _object(
                    {
                        "id": {"type": "string"},
                        "score": {"type": "number"},
                        "category": {"enum": list(CATEGORIES)},
                        "priority": {"enum": list(PRIORITIES)},
                        "priority_reason": _PRIORITY_REASON,
                        "scores": _LABEL_SCORES,
                    }
                ),
            },
            "duplicates": {
                "type": "array",
                "items": _object(
                    {
                        "id": {"type": "string"},
                        "duplicate_of": {
                            "type": "string",
                            "description": "A kept pattern's id, or known:<index> for a known text.",
                        },
                        "similarity": {"type": "number"},
                    }
                ),
            },
        }
    ),
}

ERROR_SCHEMA = _object({"error": _object({"code": {"type": "string"}, "message": {"type": "string"}})})
_ERRORS_ANY = {
    "401": "Missing or wrong bearer token.",
    "404": "No such endpoint.",
    "405": "Method not allowed.",
}
_ERRORS_BODY = {
    "400": "Malformed JSON.",
    "413": "Body larger than max_body_bytes.",
    "415": "Body is not application/json.",
    "422": "Valid JSON, invalid fields.",
    "503": "Model still downloading, converting or loading, or too many requests waiting (see Retry-After).",
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build_openapi(schemas: RequestSchemas) -> dict[str, Any]:
    """The document for the running configuration (limits appear as maxItems/maxLength)."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        responses: dict[str, Any] = {
            str(endpoint.success_status): {
                "description": "Success.",
                "content": {"application/json": {"schema": RESPONSE_SCHEMAS[endpoint.path]}},
            }
        }
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": endpoint.handler.__name__,
            "responses": responses,
        }
        if endpoint.public:
            operation["security"] = []
        else:
            responses.update({code: _error(text) for code, text in _ERRORS_ANY.items()})
        if endpoint.request_schema is not None:
            operation["requestBody"] = {
                "required": not endpoint.body_optional,
                "content": {
                    "application/json": {"schema": to_json_schema(getattr(schemas, endpoint.request_schema))}
                },
            }
            responses.update({code: _error(text) for code, text in _ERRORS_BODY.items()})
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HomeIQ add-on API",
            "version": __version__,
            "description": (
                f"Local embeddings, reranking and classification for HomeIQ suggestions. API {API_VERSION}: "
                "patterns may carry a context, and classifications say why they got their priority."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
