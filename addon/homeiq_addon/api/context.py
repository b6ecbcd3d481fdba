"""What handlers find on the application: settings, models, token, schemas, batchers, OpenAPI."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from homeiq_addon.api.coalescing import RequestBatcher
from homeiq_addon.api.schemas import RequestSchemas
from homeiq_addon.models.types import Classification, FloatArray, PatternContext
from homeiq_addon.settings import Settings

if TYPE_CHECKING:
    from homeiq_addon.models.registry import ModelRegistry


@dataclass(slots=True)
class Batchers:
    """One request batcher per inference role."""

    embed: RequestBatcher[str, FloatArray]
    rerank: RequestBatcher[tuple[str, str], float]
    classify: RequestBatcher[tuple[str, PatternContext | None], Classification]

    def all(self) -> list[RequestBatcher[Any, Any]]:
        """Every batcher, for start-up, shutdown and statistics."""
        return [self.embed, self.rerank, self.classify]


def build_batchers(registry: ModelRegistry, settings: Settings) -> Batchers:
    """Batchers that run on the registry's single inference thread."""

    def embed(texts: list[str]) -> list[FloatArray]:
        return list(registry.get_embedder().embed(texts))

    def rerank(pairs: list[tuple[str, str]]) -> list[float]:
        # Coalesced requests may carry different queries: one scoring call per query.
        reranker = registry.get_reranker()
        by_query: dict[str, list[int]] = defaultdict(list)
        for index, (query, _) in enumerate(pairs):
            by_query[query].append(index)
        scores = np.zeros(len(pairs), dtype=np.float32)
        for query, indices in by_query.items():
            scores[indices] = reranker.score(query, [pairs[i][1] for i in indices])
        return [float(s) for s in scores]

    def classify(items: list[tuple[str, PatternContext | None]]) -> list[Classification]:
        return registry.get_classifier().classify([t for t, _ in items], [c for _, c in items])

    executor = registry.executor
    return Batchers(
        embed=RequestBatcher("embedding", embed, executor, settings.batching),
        rerank=RequestBatcher("reranker", rerank, executor, settings.batching),
        classify=RequestBatcher("classifier", classify, executor, settings.batching),
    )


SETTINGS_KEY: web.AppKey[Settings] = web.AppKey("settings", Settings)
REGISTRY_KEY: web.AppKey[ModelRegistry] = web.AppKey("registry")
SCHEMAS_KEY: web.AppKey[RequestSchemas] = web.AppKey("schemas", RequestSchemas)
BATCHERS_KEY: web.AppKey[Batchers] = web.AppKey("batchers", Batchers)
# Built once per app from the endpoint table and this configuration's request schemas.
OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)
