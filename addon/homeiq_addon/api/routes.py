"""The HTTP endpoints (API v1). Handlers validate, batch and serialise; models do the rest."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import orjson
from aiohttp import web

from homeiq_addon import API_VERSION, __version__, pipeline
from homeiq_addon.api.context import BATCHERS_KEY, OPENAPI_KEY, REGISTRY_KEY, SCHEMAS_KEY, SETTINGS_KEY
from homeiq_addon.api.errors import ApiError
from homeiq_addon.api.schemas import validate
from homeiq_addon.models.types import Classification, ModelNotReadyError, PatternContext, Role, RoleStatus
from homeiq_addon.settings import Settings

JSON_CONTENT_TYPE = "application/json"
ModelT = TypeVar("ModelT")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: web.Request, schema_name: str, *, allow_empty: bool = False) -> dict[str, Any]:
    """Parse and validate a JSON body: 415 wrong type, 413 too large, 400 malformed, 422 invalid."""
    raw = await request.read() if request.can_read_body else b""
    if not raw and allow_empty:
        return validate(getattr(request.app[SCHEMAS_KEY], schema_name), {})
    if request.content_type != JSON_CONTENT_TYPE:
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {err}") from err
    except RecursionError as err:  # "[[[[..." a few thousand deep fits well under the body limit
        raise ApiError(400, "malformed_json", "The body is nested too deeply.") from err
    return validate(getattr(request.app[SCHEMAS_KEY], schema_name), body)


def role_report(status: RoleStatus) -> dict[str, Any]:
    """One role as /v1/models reports it."""
    return {
        "id": status.model_id,
        "state": status.state.value,
        "revision": status.revision,
        "precision": status.precision,
        "precision_reason": status.precision_reason,
        "source": status.source,
        "bytes_on_disk": status.bytes_on_disk,
        "load_seconds": status.load_seconds,
        "progress": status.progress,
        "error": status.error,
        "error_code": status.error_code,
    }


def models_report(settings: Settings, statuses: dict[Role, RoleStatus]) -> dict[str, Any]:
    """What /v1/models answers and ``python -m homeiq_addon info`` prints."""
    limits = settings.limits
    return {
        "version": __version__,
        "api_version": API_VERSION,
        "profile": settings.profile,
        "device": settings.device,
        "precision": settings.precision,
        "models": {role.value: role_report(status) for role, status in statuses.items()},
        "limits": {
            "max_texts": limits.max_texts,
            "max_chars": limits.max_chars,
            "max_documents": limits.max_documents,
            "max_body_bytes": limits.max_body_bytes,
        },
        "batching": {
            "max_batch_texts": settings.batching.max_batch_texts,
            "max_wait_ms": settings.batching.max_wait_ms,
            "max_queue": settings.batching.max_queue,
        },
        "dedupe_threshold": settings.dedupe_threshold,
    }


async def health(request: web.Request) -> web.Response:
    """Liveness for the Supervisor's watchdog: states and model ids, nothing secret."""
    statuses = request.app[REGISTRY_KEY].status()
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "api_version": API_VERSION,
            "profile": request.app[SETTINGS_KEY].profile,
            "models": {
                role.value: {"state": s.state.value, "id": s.model_id} for role, s in statuses.items()
            },
        }
    )


async def get_models(request: web.Request) -> web.Response:
    """Per role: id, state, revision, precision, source, size, load time, last error; limits."""
    report = models_report(request.app[SETTINGS_KEY], request.app[REGISTRY_KEY].status())
    report["batching"]["stats"] = {
        b.name: {
            "requests": b.stats.requests,
            "batches": b.stats.batches,
            "items": b.stats.items,
            "largest_batch": b.stats.largest_batch,
            "rejected": b.stats.rejected,
        }
        for b in request.app[BATCHERS_KEY].all()
    }
    return web.json_response(report)


async def load_models(request: web.Request) -> web.Response:
    """Start fetching/converting/loading roles in the background; progress is in /v1/models."""
    body = await read_json(request, "models_load", allow_empty=True)
    settings = request.app[SETTINGS_KEY]
    requested = [Role(r) for r in body.get("roles", [r.value for r in settings.roles()])]
    roles = settings.serving_roles(requested)  # lite: loading the embedding model is what was asked
    registry = request.app[REGISTRY_KEY]
    registry.start_loading(roles)
    return web.json_response(
        {"loading": [r.value for r in roles], **models_report(settings, registry.status())}, status=202
    )


async def embed(request: web.Request) -> web.Response:
    """Sentence embeddings (L2-normalised), as numbers or base64 float32."""
    batcher = request.app[BATCHERS_KEY].embed
    with batcher.expecting():
        body = await read_json(request, "embed")
        embedder = request.app[REGISTRY_KEY].get_embedder()  # 503 while it loads
    vectors = await batcher.submit(body["texts"])
    if body["encoding"] == "base64":
        # Little-endian float32, one string per vector (as OpenAI's encoding_format=base64).
        encoded: list[str] | npt.NDArray[np.float32] = [
            base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors
        ]
    else:
        # orjson writes the float32 array itself, each number as the shortest text that reads back
        # as the same float32 (exact, like base64), about 10x faster than json.dumps of a list.
        encoded = np.stack(vectors).astype(np.float32)
    payload = {
        "model": embedder.model_id,
        "dim": int(embedder.dim),
        "encoding": body["encoding"],
        "embeddings": encoded,
    }
    return web.Response(
        body=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), content_type="application/json"
    )


async def rerank(request: web.Request) -> web.Response:
    """Relevance of each document to the query, best first."""
    batcher = request.app[BATCHERS_KEY].rerank
    with batcher.expecting():
        body = await read_json(request, "rerank")
        reranker = request.app[REGISTRY_KEY].get_reranker()
    query = body["query"]
    scores = await batcher.submit([(query, d) for d in body["documents"]])
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[: body.get("top_k")]
    return web.json_response(
        {"model": reranker.model_id, "results": [{"index": i, "score": round(scores[i], 6)} for i in order]}
    )


def classification_json(result: Classification) -> dict[str, Any]:
    """Category, priority and every label's probability (one flat map: the labels differ), and
    the priority's reason in a sentence."""
    return {
        "category": result.category,
        "priority": result.priority,
        "priority_reason": result.priority_reason,
        "scores": {
            **{k: round(v, 6) for k, v in result.category_scores.items()},
            **{k: round(v, 6) for k, v in result.priority_scores.items()},
        },
    }


def pattern_context(raw: dict[str, Any] | None) -> PatternContext | None:
    """A validated context object as the models take it (None stays None)."""
    return PatternContext.from_json(raw) if raw is not None else None


async def classify(request: web.Request) -> web.Response:
    """Category (energy/security/comfort/convenience) and priority (high/medium/low)."""
    batcher = request.app[BATCHERS_KEY].classify
    with batcher.expecting():
        body = await read_json(request, "classify")
        texts = body["texts"]
        contexts = body.get("contexts", [None] * len(texts))
        if len(contexts) != len(texts):
            raise ApiError(
                422,
                "invalid_request",
                f"contexts: {len(contexts)} given for {len(texts)} texts; send one per text.",
            )
        classifier = request.app[REGISTRY_KEY].get_classifier()
    results = await batcher.submit([(t, pattern_context(c)) for t, c in zip(texts, contexts, strict=True)])
    return web.json_response(
        {"model": classifier.model_id, "results": [classification_json(r) for r in results]}
    )


def _try_get(get: Callable[[], ModelT], not_ready: list[ModelNotReadyError]) -> ModelT | None:
    """The model, or None after noting why it is not ready (load errors propagate)."""
    try:
        return get()
    except ModelNotReadyError as err:
        not_ready.append(err)
        return None


async def suggest(request: web.Request) -> web.Response:
    """Embed → drop near-duplicates → rank → classify the patterns; the top_k best."""
    body = await read_json(request, "suggest")
    ids = [p["id"] for p in body["patterns"]]
    if len(set(ids)) != len(ids):
        raise ApiError(422, "invalid_request", "patterns: ids must be unique.")
    if any(i.startswith(pipeline.KNOWN_PREFIX) for i in ids):
        raise ApiError(
            422, "invalid_request", f"patterns: ids must not start with {pipeline.KNOWN_PREFIX!r}."
        )
    settings = request.app[SETTINGS_KEY]
    registry = request.app[REGISTRY_KEY]
    # Ask for every role before failing, so all missing ones start loading at once.
    not_ready: list[ModelNotReadyError] = []
    embedder = _try_get(registry.get_embedder, not_ready)
    reranker = _try_get(registry.get_reranker, not_ready)
    classifier = _try_get(registry.get_classifier, not_ready)
    if embedder is None or reranker is None or classifier is None:
        raise max(not_ready, key=lambda e: e.retry_after_s)
    job = functools.partial(
        pipeline.suggest,
        embedder,
        reranker,
        classifier,
        [pipeline.Pattern(p["id"], p["text"], pattern_context(p.get("context"))) for p in body["patterns"]],
        body["known"],
        query=body.get("query"),
        top_k=body["top_k"],
        dedupe_threshold=body.get("dedupe_threshold", settings.dedupe_threshold),
        dedupe_siblings=body["dedupe"] == "all",
    )
    result = await asyncio.get_running_loop().run_in_executor(registry.executor, job)
    return web.json_response(
        {
            "profile": settings.profile,
            "query": result.query,
            "models": {role.value: model_id for role, model_id in result.models.items()},
            "suggestions": [
                {
                    "id": s.id,
                    "score": s.score,
                    "category": s.category,
                    "priority": s.priority,
                    "priority_reason": s.priority_reason,
                    "scores": {**s.category_scores, **s.priority_scores},
                }
                for s in result.suggestions
            ],
            "duplicates": [
                {"id": d.id, "duplicate_of": d.duplicate_of, "similarity": d.similarity}
                for d in result.duplicates
            ],
        }
    )


async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API, generated from the routes and schemas."""
    return web.json_response(request.app[OPENAPI_KEY])


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route: the app registers these and the OpenAPI document describes them."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    request_schema: str | None = None  # attribute of RequestSchemas
    success_status: int = 200
    public: bool = False
    body_optional: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", health, "Liveness and model states (no token needed).", public=True),
    Endpoint("GET", "/openapi.json", openapi_document, "This API's OpenAPI document."),
    Endpoint("GET", "/v1/models", get_models, "Model status per role, limits and batching."),
    Endpoint(
        "POST",
        "/v1/models/load",
        load_models,
        "Start fetching, converting and loading models in the background.",
        "models_load",
        success_status=202,
        body_optional=True,
    ),
    Endpoint("POST", "/v1/embed", embed, "Sentence embeddings (L2-normalised).", "embed"),
    Endpoint("POST", "/v1/rerank", rerank, "Rank documents against a query.", "rerank"),
    Endpoint("POST", "/v1/classify", classify, "Category and priority of each text.", "classify"),
    Endpoint("POST", "/v1/suggest", suggest, "Ranked, deduplicated, classified suggestions.", "suggest"),
)
