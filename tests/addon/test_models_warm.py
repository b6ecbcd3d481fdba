"""The warm-up runs what a first request runs: one sample request through each role's own path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from homeiq_addon.models.loaded import SAMPLE_TEXT, token_rows
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role
from homeiq_addon.pipeline import DEFAULT_QUERY

# The method every inference of a role goes through; its last two arguments are (batch, length).
INFERENCE = {Role.EMBEDDING: "_run", Role.RERANKER: "_run", Role.CLASSIFIER: "_encode"}
PACKED = "_run_packed"  # the embedder's, when its graph runs packed


def first_request(role: Role, model: Any) -> None:
    """What a client's first request asks of ``role``: one pattern text (ranked against the
    default query of /v1/suggest by the reranker)."""
    if role is Role.EMBEDDING:
        model.embed([SAMPLE_TEXT])
    elif role is Role.RERANKER:
        model.score(DEFAULT_QUERY, [SAMPLE_TEXT])
    else:
        model.classify([SAMPLE_TEXT])


def record_shapes(monkeypatch: pytest.MonkeyPatch, model: Any, role: Role) -> list[tuple[int, int]]:
    """Every (batch, length) ``model`` runs from now on."""
    shapes: list[tuple[int, int]] = []
    method = PACKED if getattr(model, "packed", False) else INFERENCE[role]
    run: Callable[..., Any] = getattr(model, method)

    def recording(*args: Any) -> Any:
        shapes.append((args[-2], args[-1]))
        return run(*args)

    monkeypatch.setattr(model, method, recording)
    return shapes


def model_of(registry: ModelRegistry, role: Role) -> Any:
    """``role``'s model, once the registry's own warm-up (queued on its inference thread) is done."""
    registry.executor.submit(lambda: None).result()
    getters = {
        Role.EMBEDDING: registry.get_embedder,
        Role.RERANKER: registry.get_reranker,
        Role.CLASSIFIER: registry.get_classifier,
    }
    return getters[role]()


@pytest.fixture(params=list(Role), ids=lambda role: role.value)
def recorded(
    request: pytest.FixtureRequest, fp32_registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> tuple[Role, Any, list[tuple[int, int]]]:
    """A role, its ready model, and the shapes that model runs from now on."""
    role: Role = request.param
    model = model_of(fp32_registry, role)
    return role, model, record_shapes(monkeypatch, model, role)


def test_the_warm_up_runs_the_shapes_of_a_first_request(
    recorded: tuple[Role, Any, list[tuple[int, int]]],
) -> None:
    role, model, shapes = recorded

    model.warm()
    warmed = list(shapes)
    shapes.clear()
    first_request(role, model)

    assert warmed and warmed == shapes  # the role's own tokenizer and prompts decide the shape
    if role is Role.RERANKER:  # the pair with the default query, not the text alone
        (pair,) = model.encode_pairs(DEFAULT_QUERY, [SAMPLE_TEXT])
        (alone,) = token_rows(model._tok, [SAMPLE_TEXT])
        assert warmed[0][1] >= len(pair) > len(alone)


def test_the_benchmark_can_warm_given_shapes(recorded: tuple[Role, Any, list[tuple[int, int]]]) -> None:
    _, model, shapes = recorded

    model.warm([(2, 8), (1, 24)])

    assert shapes == [(2, 8), (1, 24)]
