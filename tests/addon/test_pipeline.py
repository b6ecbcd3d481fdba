"""Suggest pipeline: near-duplicates of known texts and of each other are dropped with a reason."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role
from homeiq_addon.pipeline import Pattern, SuggestResult, find_duplicates, suggest


def _unit(*rows: list[float]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_a_pattern_close_to_a_known_text_is_a_duplicate_of_that_known_text() -> None:
    patterns = _unit([1, 0, 0], [0, 1, 0])
    known = _unit([0, 0, 1], [0.99, 0.1, 0])
    kept, duplicates = find_duplicates(patterns, known, ["a", "b"], threshold=0.9)
    assert kept == [1]
    assert [(d.id, d.duplicate_of) for d in duplicates] == [("a", "known:1")]
    assert 0.9 <= duplicates[0].similarity <= 1.0


def test_later_patterns_are_duplicates_of_the_first_kept_one() -> None:
    patterns = _unit([1, 0, 0], [0.98, 0.05, 0], [0, 1, 0], [0.97, 0, 0.1])
    kept, duplicates = find_duplicates(patterns, np.zeros((0, 3), np.float32), ["a", "b", "c", "d"], 0.9)
    assert kept == [0, 2]
    assert [(d.id, d.duplicate_of) for d in duplicates] == [("b", "a"), ("d", "a")]


def test_without_siblings_only_known_texts_make_duplicates() -> None:
    patterns = _unit([1, 0, 0], [0.98, 0.05, 0], [0, 1, 0])
    known = _unit([0, 0.99, 0.1])
    kept, duplicates = find_duplicates(patterns, known, ["a", "b", "c"], 0.9, siblings=False)
    assert kept == [0, 1]  # b is near a, but the client told them apart
    assert [(d.id, d.duplicate_of) for d in duplicates] == [("c", "known:0")]


def test_a_duplicate_of_a_dropped_pattern_is_not_chained() -> None:
    """Similarity is checked against kept patterns only, so no chain of small steps drifts."""
    patterns = _unit([1, 0, 0], [0.93, 0.37, 0], [0.75, 0.66, 0])
    kept, duplicates = find_duplicates(patterns, np.zeros((0, 3), np.float32), ["a", "b", "c"], 0.9)
    # b is ~0.93 like a; c is ~0.94 like b but ~0.75 like a: c stays.
    assert kept == [0, 2]
    assert [d.id for d in duplicates] == ["b"]


def test_threshold_one_keeps_everything_but_exact_copies() -> None:
    patterns = _unit([1, 0], [1, 0], [0.999, 0.01])
    patterns[1] *= 0.9999999  # float32 rounding: an identical text's cosine may land just under 1
    kept, duplicates = find_duplicates(patterns, np.zeros((0, 2), np.float32), ["a", "b", "c"], 1.0)
    assert kept == [0, 2]
    assert [(d.id, d.duplicate_of) for d in duplicates] == [("b", "a")]


# ---- with the real all-MiniLM-L6-v2 weights (lite profile) ---------------------------------


def _suggest(registry: ModelRegistry, patterns: list[Pattern], **kwargs: Any) -> SuggestResult:
    return suggest(
        registry.get_embedder(), registry.get_reranker(), registry.get_classifier(), patterns, **kwargs
    )


@pytest.mark.slow
def test_real_model_drops_a_rescheduled_copy_but_keeps_another_room(minilm_registry: ModelRegistry) -> None:
    """Measured cosines: 07:00 vs 07:15 same room ≈ 0.985; kitchen vs bedroom ≈ 0.84 (default 0.9)."""
    patterns = [
        Pattern("kitchen", "Turn on the kitchen light at 07:00 on weekdays"),
        Pattern("kitchen-later", "Turn on the kitchen light at 07:15 on weekdays"),
        Pattern("bedroom", "Turn on the bedroom light at 07:00 on weekdays"),
        Pattern("garage", "Close the garage door when everyone has left"),
        Pattern("heating", "Lower the heating to 17 degrees at 23:00"),
    ]
    result = _suggest(minilm_registry, patterns, known=["Lower the heating to 17 degrees at 23:05"])
    assert {(d.id, d.duplicate_of) for d in result.duplicates} == {
        ("kitchen-later", "kitchen"),
        ("heating", "known:0"),
    }
    assert {s.id for s in result.suggestions} == {"kitchen", "bedroom", "garage"}


@pytest.mark.slow
def test_real_model_ranks_by_the_query_and_names_the_lite_stand_ins(minilm_registry: ModelRegistry) -> None:
    patterns = [
        Pattern("kitchen", "Turn on the kitchen light at 07:00 on weekdays"),
        Pattern("garage", "Close the garage door when everyone has left"),
        Pattern("tv", "Switch off the TV when nobody is in the living room for 30 minutes"),
    ]
    result = _suggest(minilm_registry, patterns, query="Keep the house secure when nobody is home", top_k=2)
    assert result.suggestions[0].id == "garage"
    assert len(result.suggestions) == 2
    embedding_id = result.models[Role.EMBEDDING]
    assert result.models[Role.RERANKER] == f"cosine:{embedding_id}"
    assert result.models[Role.CLASSIFIER] == f"nearest-exemplar:{embedding_id}"
    for s in result.suggestions:
        assert sum(s.category_scores.values()) == pytest.approx(1.0, abs=1e-4)
        assert s.category == max(s.category_scores, key=s.category_scores.__getitem__)
