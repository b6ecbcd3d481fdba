"""API 1.1: patterns carry an optional context; classifications carry a priority reason.

Served by the real aiohttp server on loopback with the tiny models (full profile), and the lite
classifier on the real all-MiniLM-L6-v2 weights for the quality checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from homeiq_addon import API_VERSION
from homeiq_addon.models.classifier import OVClassifier
from homeiq_addon.models.labels import category_prompt, priority_prompt
from homeiq_addon.models.lite import ExemplarClassifier, category_priors
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Evidence, PatternContext, Role
from tests.addon.api_fixtures import AUTH, checked_json
from tests.addon.labelled_set import load_labelled_set
from tests.addon.test_models_inference import reference_label_probs
from tests.tiny_models import tiny_settings

TEXT = "Bathroom fan turns off by hand about 15 min after it turns on"
OFTEN = {"occurrences": 40, "support_days": 28, "eligible_days": 30, "coverage": 0.93, "precision": 0.9}
SELDOM = {"occurrences": 3, "support_days": 3, "eligible_days": 30, "coverage": 0.1, "precision": 0.3}
CONTEXT = {"kind": "duration", "trigger": "state", "domains": ["fan"], "action": "off", "targets": 1}


# ---- the contract -------------------------------------------------------------------------


async def test_an_old_classify_request_gets_the_old_fields_plus_a_priority_reason(
    full: TestClient[Any, Any],
) -> None:
    body = await checked_json(await full.post("/v1/classify", json={"texts": [TEXT]}, headers=AUTH), 200)
    (result,) = body["results"]
    assert set(result) == {"category", "priority", "scores", "priority_reason"}
    assert set(result["scores"]) == {*CATEGORIES, *PRIORITIES}
    assert result["priority_reason"].startswith("No evidence sent")


async def test_an_old_suggest_request_gets_the_old_fields_plus_a_priority_reason(
    full: TestClient[Any, Any],
) -> None:
    patterns = [{"id": "fan", "text": TEXT}, {"id": "lock", "text": "Lock the back door at 22:00"}]
    body = await checked_json(await full.post("/v1/suggest", json={"patterns": patterns}, headers=AUTH), 200)
    assert {s["id"] for s in body["suggestions"]} == {"fan", "lock"}
    for suggestion in body["suggestions"]:
        assert set(suggestion) == {"id", "score", "category", "priority", "scores", "priority_reason"}
        assert suggestion["priority_reason"]


async def test_health_and_models_report_the_api_version(full: TestClient[Any, Any]) -> None:
    assert API_VERSION == "1.1"
    assert (await checked_json(await full.get("/health"), 200))["api_version"] == API_VERSION
    assert (await checked_json(await full.get("/v1/models", headers=AUTH), 200))["api_version"] == API_VERSION


async def test_the_same_text_with_different_evidence_gets_different_priorities(
    full: TestClient[Any, Any],
) -> None:
    contexts = [{**CONTEXT, "evidence": OFTEN}, {**CONTEXT, "evidence": SELDOM}, None]
    body = await checked_json(
        await full.post("/v1/classify", json={"texts": [TEXT] * 3, "contexts": contexts}, headers=AUTH), 200
    )
    often, seldom, without = body["results"]
    assert (often["priority"], seldom["priority"]) == ("high", "low")
    assert often["priority_reason"].startswith("Happens on 28 of 30 days")
    assert seldom["priority_reason"].startswith("Seen only on 3 of 30 days")
    assert without["priority_reason"].startswith("No evidence sent")


async def test_suggest_passes_each_pattern_context_to_the_priority(full: TestClient[Any, Any]) -> None:
    patterns = [
        {"id": "often", "text": TEXT, "context": {**CONTEXT, "evidence": OFTEN}},
        {"id": "seldom", "text": TEXT.replace("15", "16"), "context": {**CONTEXT, "evidence": SELDOM}},
    ]
    body = await checked_json(
        await full.post("/v1/suggest", json={"patterns": patterns, "dedupe_threshold": 1.0}, headers=AUTH),
        200,
    )
    priorities = {s["id"]: s["priority"] for s in body["suggestions"]}
    assert priorities == {"often": "high", "seldom": "low"}


async def test_unknown_context_fields_are_ignored(full: TestClient[Any, Any]) -> None:
    context = {**CONTEXT, "colour": "blue", "evidence": {**OFTEN, "weather": "rain"}}
    plain = await full.post(
        "/v1/classify", json={"texts": [TEXT], "contexts": [{**CONTEXT, "evidence": OFTEN}]}, headers=AUTH
    )
    extra = await full.post("/v1/classify", json={"texts": [TEXT], "contexts": [context]}, headers=AUTH)
    assert (await checked_json(extra, 200)) == (await checked_json(plain, 200))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"texts": ["a"], "contexts": [{"kind": 3}]}, "contexts[0]"),
        ({"texts": ["a"], "contexts": [{"domains": "light"}]}, "contexts[0]"),
        ({"texts": ["a"], "contexts": [{"targets": True}]}, "contexts[0]"),
        ({"texts": ["a"], "contexts": [{"evidence": {"coverage": 1.5}}]}, "contexts[0]"),
        ({"texts": ["a"], "contexts": [{"evidence": {"support_days": -1}}]}, "contexts[0]"),
        ({"texts": ["a"], "contexts": ["lock"]}, "contexts[0]"),
        ({"texts": ["a", "b"], "contexts": [None]}, "contexts: 1 given for 2 texts"),
        ({"texts": ["a"], "contexts": {"kind": "sun"}}, "contexts"),
    ],
)
async def test_invalid_contexts_are_refused_with_422(
    full: TestClient[Any, Any], body: dict[str, Any], message: str
) -> None:
    error = await checked_json(await full.post("/v1/classify", json=body, headers=AUTH), 422)
    assert error["error"]["code"] == "invalid_request"
    assert message in error["error"]["message"]


async def test_an_invalid_pattern_context_is_refused_with_422(full: TestClient[Any, Any]) -> None:
    patterns = [{"id": "a", "text": TEXT, "context": {"evidence": {"precision": "high"}}}]
    error = await checked_json(await full.post("/v1/suggest", json={"patterns": patterns}, headers=AUTH), 422)
    assert "patterns[0].context.evidence.precision" in error["error"]["message"]


# ---- the full profile: the context goes into the prompt -----------------------------------


def test_the_full_profile_prompt_carries_the_context(
    data_dir: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    context = PatternContext(
        kind="duration", domains=("fan",), action="off", evidence=Evidence(support_days=24, eligible_days=34)
    )
    prompt = category_prompt(TEXT, context)
    assert "Details: kind: duration; acts on: fan (off); seen on 24 of 34 days\n" in prompt
    assert category_prompt(TEXT) == category_prompt(TEXT, PatternContext())  # nothing to render
    assert "Details:" in priority_prompt(TEXT, context)
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models))
    registry.start_loading([Role.CLASSIFIER])
    registry.wait(timeout=120)
    classifier = registry.get_classifier()
    assert isinstance(classifier, OVClassifier)
    registry.executor.submit(lambda: None).result()  # the warm-up's sample request has run
    encoded: list[int] = []  # the prompts each encoder run held
    encode = classifier._encode
    monkeypatch.setattr(
        classifier, "_encode", lambda rows, *shape: encoded.append(len(rows)) or encode(rows, *shape)
    )
    (with_context, without) = classifier.classify([TEXT, TEXT], [context, None])
    registry.close()
    # The priority with a context comes from its evidence: only the text without one asks the model.
    assert sum(encoded) == 3
    # What the OpenVINO classifier scored is PyTorch's answer to the prompt with the context.
    reference = reference_label_probs(tiny_models["classifier"], prompt, CATEGORIES)
    got = np.array([with_context.category_scores[c] for c in CATEGORIES])
    assert np.abs(got - reference).max() < 1e-3
    assert with_context.category_scores != without.category_scores
    assert with_context.priority_reason.startswith("Happens on 24 of 34 days")


# ---- the lite profile on the real MiniLM weights -----------------------------------------


@pytest.fixture(scope="module")
def exemplar_classifier(minilm_registry: ModelRegistry) -> ExemplarClassifier:
    classifier = minilm_registry.get_classifier()
    assert isinstance(classifier, ExemplarClassifier)
    return classifier


@pytest.mark.slow
def test_a_context_prior_shifts_a_close_call(exemplar_classifier: ExemplarClassifier) -> None:
    """Shutters that close at night read as comfort; the context says they are a garage door."""
    text = "Shutters close around 21:30 every day"
    (plain,) = exemplar_classifier.classify([text])
    garage = PatternContext(domains=("cover",), device_classes=("garage",), action="closed")
    blinds = PatternContext(domains=("cover",), device_classes=("blind",), action="closed")
    (secure, pleasant) = exemplar_classifier.classify([text, text], [garage, blinds])
    assert plain.category == "comfort"
    assert secure.category_scores["security"] > plain.category_scores["security"]
    assert pleasant.category_scores["comfort"] > plain.category_scores["comfort"]
    assert (secure.category, pleasant.category) == ("security", "comfort")


@pytest.mark.slow
def test_probabilities_sum_to_one_and_a_close_call_says_so(exemplar_classifier: ExemplarClassifier) -> None:
    texts = [p.text for p in load_labelled_set("heldout")]
    sims = exemplar_classifier.similarity_scores(texts)
    probs = exemplar_classifier.category_probabilities(sims, (np.zeros_like(sims), np.zeros_like(sims)))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    ordered = np.sort(sims, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]  # between the two most similar categories
    close, clear = probs.max(axis=1)[margin < 0.01], probs.max(axis=1)[margin > 0.1]
    assert len(close) and len(clear)
    assert close.max() < 0.6 and clear.min() > 0.8
    # Equal similarities and no prior: no category is preferred.
    flat = np.full((1, len(CATEGORIES)), 0.5, dtype=np.float32)
    assert np.allclose(exemplar_classifier.category_probabilities(flat, category_priors(["x"], [None])), 0.25)


@pytest.mark.slow
@pytest.mark.parametrize(("with_context", "minimum"), [(True, 0.85), (False, 0.80)])
def test_held_out_accuracy(
    exemplar_classifier: ExemplarClassifier, with_context: bool, minimum: float
) -> None:
    patterns = load_labelled_set("heldout")
    results = exemplar_classifier.classify(
        [p.text for p in patterns], [p.context if with_context else None for p in patterns]
    )
    right = sum(r.category == p.category for r, p in zip(results, patterns, strict=True))
    assert right / len(patterns) >= minimum
    # Wrong answers are less sure of themselves than right ones (calibration, not just accuracy).
    top = [max(r.category_scores.values()) for r in results]
    wrong = [t for t, r, p in zip(top, results, patterns, strict=True) if r.category != p.category]
    assert np.mean(wrong) < np.mean(top)
