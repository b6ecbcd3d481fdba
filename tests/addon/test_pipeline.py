"""Suggest pipeline: near-duplicates of known texts and of each other are dropped with a reason."""

from __future__ import annotations

import numpy as np

from homeiq_addon.pipeline import find_duplicates


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
