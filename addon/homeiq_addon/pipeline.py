"""Suggest = embed → dedupe → rank → classify, over the model runtime's role protocols.

Blocking: run :func:`suggest` on the model executor. It takes the models as arguments so that
the caller decides (and reports) which implementation served each step — in the ``lite``
profile the reranker and classifier are embedding-based stand-ins whose ``model_id`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from homeiq_addon.models.types import Classifier, Embedder, PatternContext, Reranker, Role

# What a good suggestion is, when the caller does not say: the reranker scores each pattern
# as an answer to this question.
DEFAULT_QUERY = (
    "A useful home automation that saves the residents repeated manual work, energy or money, "
    "or makes the home more comfortable or secure."
)
KNOWN_PREFIX = "known:"
# Identical texts embed to a cosine of 1 only up to float32 rounding; threshold 1.0 must still
# catch them.
_SIMILARITY_SLACK = 1e-5


@dataclass(frozen=True, slots=True)
class Pattern:
    """One mined usage pattern as the integration sends it (the context only from newer clients)."""

    id: str
    text: str
    context: PatternContext | None = None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A kept pattern with its rank score and classification."""

    id: str
    score: float
    category: str
    priority: str
    category_scores: dict[str, float]
    priority_scores: dict[str, float]
    priority_reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A dropped pattern: ``duplicate_of`` is a kept pattern's id or ``known:<index>``."""

    id: str
    duplicate_of: str
    similarity: float


@dataclass(slots=True)
class SuggestResult:
    """Ranked suggestions, the duplicates that were dropped, and who served each step."""

    query: str
    suggestions: list[Suggestion] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    models: dict[Role, str] = field(default_factory=dict)


def find_duplicates(
    pattern_vectors: np.ndarray,
    known_vectors: np.ndarray,
    ids: Sequence[str],
    threshold: float,
    *,
    siblings: bool = True,
) -> tuple[list[int], list[Duplicate]]:
    """Split patterns (in input order) into kept indices and duplicates.

    A pattern is a duplicate when its cosine similarity to a known text, or (with ``siblings``) to
    a pattern kept before it, reaches ``threshold``. Known texts are checked first: an automation
    that already exists matters more than a sibling suggestion. Vectors are L2-normalised, so dot
    = cosine. Words alone cannot tell "turns on at 09:25" from "turns off at 10:40": a client that
    keeps one pattern per habit itself asks for known texts only.
    """
    threshold -= _SIMILARITY_SLACK
    kept: list[int] = []
    duplicates: list[Duplicate] = []
    known_sims = pattern_vectors @ known_vectors.T if len(known_vectors) else None
    pattern_sims = pattern_vectors @ pattern_vectors.T
    for i, pattern_id in enumerate(ids):
        if known_sims is not None:
            j = int(np.argmax(known_sims[i]))
            if known_sims[i, j] >= threshold:
                duplicates.append(
                    Duplicate(pattern_id, f"{KNOWN_PREFIX}{j}", round(float(known_sims[i, j]), 4))
                )
                continue
        if kept and siblings:
            sims = pattern_sims[i, kept]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                duplicates.append(Duplicate(pattern_id, ids[kept[best]], _similarity(sims[best])))
                continue
        kept.append(i)
    return kept, duplicates


def _similarity(value: np.floating[Any]) -> float:
    return round(min(1.0, float(value)), 4)


def suggest(
    embedder: Embedder,
    reranker: Reranker,
    classifier: Classifier,
    patterns: Sequence[Pattern],
    known: Sequence[str] = (),
    *,
    query: str | None = None,
    top_k: int = 10,
    dedupe_threshold: float = 0.9,
    dedupe_siblings: bool = True,
) -> SuggestResult:
    """Rank ``patterns`` as automation suggestions; see the module docstring."""
    query = query or DEFAULT_QUERY
    result = SuggestResult(
        query=query,
        models={
            Role.EMBEDDING: embedder.model_id,
            Role.RERANKER: reranker.model_id,
            Role.CLASSIFIER: classifier.model_id,
        },
    )
    if not patterns:
        return result
    # One embedding batch for patterns and known texts together.
    vectors = embedder.embed([p.text for p in patterns] + list(known))
    pattern_vectors, known_vectors = vectors[: len(patterns)], vectors[len(patterns) :]
    kept, result.duplicates = find_duplicates(
        pattern_vectors, known_vectors, [p.id for p in patterns], dedupe_threshold, siblings=dedupe_siblings
    )
    scores = reranker.score(query, [patterns[i].text for i in kept])
    # Stable sort: equal scores keep the caller's order (its own ranking by support).
    order = sorted(range(len(kept)), key=lambda k: -float(scores[k]))[:top_k]
    chosen = [kept[k] for k in order]
    classifications = (
        classifier.classify([patterns[i].text for i in chosen], [patterns[i].context for i in chosen])
        if chosen
        else []
    )
    for k, index, classification in zip(order, chosen, classifications, strict=True):
        result.suggestions.append(
            Suggestion(
                id=patterns[index].id,
                score=round(float(scores[k]), 6),
                category=classification.category,
                priority=classification.priority,
                category_scores=dict(classification.category_scores),
                priority_scores=dict(classification.priority_scores),
                priority_reason=classification.priority_reason,
            )
        )
    return result
