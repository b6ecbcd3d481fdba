"""Request schemas (voluptuous), built from the configured limits, and their JSON Schema.

The OpenAPI document is generated from these same objects by :func:`to_json_schema`, so the
published schema and the validation the handlers run cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import voluptuous as vol

from homeiq_addon.api.errors import ApiError
from homeiq_addon.models.types import Role
from homeiq_addon.settings import Limits

MAX_PATTERN_ID_CHARS = 200
MAX_CONTEXT_NAME_CHARS = 64  # a kind, trigger, domain, device class or action name
MAX_CONTEXT_NAMES = 32  # names in one context list (domains, device classes)
EMBEDDING_ENCODINGS = ("float", "base64")
DEFAULT_SUGGEST_TOP_K = 10


class Integer:
    """An int that is not a bool (JSON ``true`` must not pass as 1)."""

    def __call__(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        return value


class Number:
    """A JSON number (int or float, not bool), returned as float."""

    def __call__(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid("expected a number")
        return float(value)


class String:
    """A JSON string that is valid Unicode (JSON escapes can carry lone surrogates)."""

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str):
            raise vol.Invalid("expected a string")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as err:
                # "\ud800" parses, but the tokenizers (and UTF-8 output) cannot take it: a 422,
                # not a 500 from deep inside a model call.
                raise vol.Invalid(f"contains an unpaired surrogate at position {err.start}") from err
        return value


def _text(limits: Limits) -> vol.All:
    return vol.All(String(), vol.Length(min=1, max=limits.max_chars))


def _texts(limits: Limits, *, min_items: int = 1) -> vol.All:
    return vol.All([_text(limits)], vol.Length(min=min_items, max=limits.max_texts))


def _name() -> vol.All:
    return vol.All(String(), vol.Length(min=1, max=MAX_CONTEXT_NAME_CHARS))


def _names(description: str) -> Any:
    return vol.All([_name()], vol.Length(max=MAX_CONTEXT_NAMES)), description


def _count() -> vol.All:
    return vol.All(Integer(), vol.Range(min=0))


def _share() -> vol.All:
    return vol.All(Number(), vol.Range(min=0.0, max=1.0))


def context_schema() -> vol.Schema:
    """A pattern's structured context (API 1.1): every field optional, unknown fields ignored."""
    fields: dict[str, tuple[Any, str]] = {
        "kind": (_name(), "time_of_day, sun, sequence, duration, conditional, group, presence, ..."),
        "trigger": (_name(), "time, sun, state or presence."),
        "domains": _names("Entity domains of the action targets (light, lock, climate, ...)."),
        "trigger_domains": _names("Entity domains of the trigger entities."),
        "device_classes": _names("Device classes involved (door, motion, window, garage, ...)."),
        "action": (_name(), "Target state or service (on, off, locked, heat, closed, ...)."),
        "targets": (vol.All(Integer(), vol.Range(min=1)), "Number of entities acted on."),
    }
    evidence = {
        "occurrences": (_count(), "How often the habit was seen."),
        "support_days": (_count(), "Days on which it happened."),
        "eligible_days": (_count(), "Days on which it could have happened."),
        "coverage": (_share(), "Share of the action's changes that the habit explains (0..1)."),
        "precision": (_share(), "Share of trigger firings followed by the action (0..1)."),
    }
    return vol.Schema(
        {
            **{vol.Optional(k, description=d): v for k, (v, d) in fields.items()},
            vol.Optional("evidence", description="The miner's figures for the habit."): vol.Schema(
                {vol.Optional(k, description=d): v for k, (v, d) in evidence.items()},
                extra=vol.REMOVE_EXTRA,
            ),
        },
        extra=vol.REMOVE_EXTRA,
    )


@dataclass(frozen=True, slots=True)
class RequestSchemas:
    """One voluptuous schema per endpoint that takes a body."""

    models_load: vol.Schema
    embed: vol.Schema
    rerank: vol.Schema
    classify: vol.Schema
    suggest: vol.Schema


def build_request_schemas(limits: Limits) -> RequestSchemas:
    """Schemas with the configured limits baked in."""
    text = _text(limits)
    context = context_schema()
    return RequestSchemas(
        models_load=vol.Schema(
            {
                vol.Optional(
                    "roles", description="Roles to load; all roles of the profile when absent."
                ): vol.All([vol.In([role.value for role in Role])], vol.Length(min=1, max=len(Role)))
            }
        ),
        embed=vol.Schema(
            {
                vol.Required("texts", description="Texts to embed."): _texts(limits),
                vol.Optional(
                    "encoding",
                    default="float",
                    description="float: lists of numbers; base64: each vector as little-endian float32.",
                ): vol.In(list(EMBEDDING_ENCODINGS)),
            }
        ),
        rerank=vol.Schema(
            {
                vol.Required("query", description="What the documents are ranked against."): text,
                vol.Required("documents", description="Candidate texts."): vol.All(
                    [text], vol.Length(min=1, max=limits.max_documents)
                ),
                vol.Optional("top_k", description="Return only the best top_k results."): vol.All(
                    Integer(), vol.Range(min=1, max=limits.max_documents)
                ),
            }
        ),
        classify=vol.Schema(
            {
                vol.Required("texts", description="Texts to classify."): _texts(limits),
                vol.Optional(
                    "contexts",
                    description="One context (or null) per text, in the same order (API 1.1).",
                ): vol.All([vol.Any(None, context)], vol.Length(max=limits.max_texts)),
            }
        ),
        suggest=vol.Schema(
            {
                vol.Required("patterns", description="Mined patterns; ids must be unique."): vol.All(
                    [
                        {
                            vol.Required("id"): vol.All(
                                String(), vol.Length(min=1, max=MAX_PATTERN_ID_CHARS)
                            ),
                            vol.Required("text"): text,
                            vol.Optional(
                                "context", description="What the client knows besides the text (API 1.1)."
                            ): context,
                        }
                    ],
                    vol.Length(min=1, max=limits.max_texts),
                ),
                vol.Optional(
                    "query", description="What a good suggestion is; a sensible default when absent."
                ): text,
                vol.Optional(
                    "known",
                    default=list,
                    description="Texts of existing automations and dismissed suggestions.",
                ): _texts(limits, min_items=0),
                vol.Optional(
                    "top_k",
                    default=min(DEFAULT_SUGGEST_TOP_K, limits.max_texts),
                    description="Suggestions to return.",
                ): vol.All(Integer(), vol.Range(min=1, max=limits.max_texts)),
                vol.Optional(
                    "dedupe_threshold", description="Cosine similarity from which texts count as duplicates."
                ): vol.All(Number(), vol.Range(min=0.5, max=1.0)),
                vol.Optional(
                    "dedupe",
                    default="all",
                    description=(
                        "all: drop patterns near a known text or near a pattern kept before them; known: "
                        "only near a known text, for a client that tells its patterns apart itself "
                        "(API 1.1)."
                    ),
                ): vol.In(("all", "known")),
            }
        ),
    )


def validate(schema: vol.Schema, body: Any) -> dict[str, Any]:
    """Validate a parsed JSON body; invalid fields answer 422 naming the field."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "The body must be a JSON object.")
    try:
        result: dict[str, Any] = schema(body)
    except vol.MultipleInvalid as err:
        raise ApiError(422, "invalid_request", "; ".join(_describe(e) for e in err.errors)) from err
    except vol.Invalid as err:
        raise ApiError(422, "invalid_request", _describe(err)) from err
    return result


def _describe(err: vol.Invalid) -> str:
    path = "".join(
        f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(err.path)
    )
    return f"{path}: {err.msg}" if path else err.msg


# ---- JSON Schema (for the OpenAPI document) ---------------------------------------------


def to_json_schema(validator: Any) -> dict[str, Any]:  # noqa: PLR0911 - one branch per validator kind
    """JSON Schema for the subset of voluptuous used in this module."""
    if isinstance(validator, vol.Schema):
        schema = to_json_schema(validator.schema)
        if validator.extra != vol.PREVENT_EXTRA:
            schema["additionalProperties"] = True  # unknown fields are ignored, not refused
        return schema
    if validator is None:
        return {"type": "null"}
    if isinstance(validator, vol.Any):
        return {"anyOf": [to_json_schema(v) for v in validator.validators]}
    if isinstance(validator, dict):
        return _object_schema(validator)
    if isinstance(validator, list):
        return {"type": "array", "items": to_json_schema(validator[0])}
    if isinstance(validator, String):
        return {"type": "string"}
    if isinstance(validator, Integer):
        return {"type": "integer"}
    if isinstance(validator, Number):
        return {"type": "number"}
    if isinstance(validator, vol.In):
        return {"enum": list(cast(Iterable[Any], validator.container))}
    if isinstance(validator, vol.All):
        return _all_schema(validator)
    raise TypeError(f"no JSON Schema for validator {validator!r}")


def _object_schema(mapping: dict[Any, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for marker, value in mapping.items():
        name = str(marker.schema)
        prop = to_json_schema(value)
        if getattr(marker, "description", None):
            prop["description"] = marker.description
        default: Any = getattr(marker, "default", vol.UNDEFINED)
        if default is not vol.UNDEFINED:
            prop["default"] = default()
        properties[name] = prop
        if isinstance(marker, vol.Required):
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _all_schema(validator: vol.All) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    lengths: list[vol.Length] = []
    for part in validator.validators:
        if isinstance(part, vol.Length):
            lengths.append(part)
        elif isinstance(part, vol.Range):
            if part.min is not None:
                schema["minimum"] = part.min
            if part.max is not None:
                schema["maximum"] = part.max
        else:
            schema.update(to_json_schema(part))
    for length in lengths:
        prefix = "Items" if schema.get("type") == "array" else "Length"
        if length.min is not None:
            schema[f"min{prefix}"] = length.min
        if length.max is not None:
            schema[f"max{prefix}"] = length.max
    return schema
