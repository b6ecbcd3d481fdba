"""The ``lite`` profile: reranking and classification served by the embedding model alone.

For small boards and offline demos. The ``model_id`` of each says what really served it
("cosine:<embedding id>", "nearest-exemplar:<embedding id>"), so nothing degrades silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .exemplars import EXEMPLARS
from .pattern_context import category_prior, context_from_text, merged_context
from .priority import assess_priority
from .types import CATEGORIES, Classification, Embedder, FloatArray, PatternContext

# Fitted on the development half for likelihood (scripts/eval_classifier.py --fit): exemplars
# averaged per category, the softmax temperature over their cosine similarities, and the weights
# (cosine similarity per prior point) of the context prior when the client sends a context and
# when it is read from the wording.
EXEMPLAR_TOP_K = 2
EXEMPLAR_TEMPERATURE = 0.038
CONTEXT_PRIOR_WEIGHT = 0.05
WORDING_PRIOR_WEIGHT = 0.04


class CosineReranker:
    """Relevance = cosine similarity of query and document embeddings, mapped to 0..1."""

    def __init__(self, embedder: Embedder) -> None:
        """Rerank with ``embedder``."""
        self._embedder = embedder
        self.model_id = f"cosine:{embedder.model_id}"

    def score(self, query: str, documents: Sequence[str]) -> FloatArray:
        """Return (cos + 1) / 2 per document, in input order. Blocking."""
        if not documents:
            return np.zeros(0, dtype=np.float32)
        vecs = self._embedder.embed([query, *documents])
        cos = vecs[1:] @ vecs[0]
        return np.asarray(np.clip((cos + 1.0) / 2.0, 0.0, 1.0), dtype=np.float32)


def _softmax(logits: FloatArray) -> FloatArray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class ExemplarSettings:
    """How exemplar similarities and context priors become probabilities.

    Fitted on the development half of ``tests/addon/data`` by ``scripts/eval_classifier.py
    --fit``; the held-out half never informs them.
    """

    top_k: int = EXEMPLAR_TOP_K
    temperature: float = EXEMPLAR_TEMPERATURE
    context_weight: float = CONTEXT_PRIOR_WEIGHT
    wording_weight: float = WORDING_PRIOR_WEIGHT


def category_priors(
    texts: Sequence[str], contexts: Sequence[PatternContext | None]
) -> tuple[FloatArray, FloatArray]:
    """Per text, the prior from the sent context (zeros where none was sent; its gaps filled from
    the wording) and the prior read from the wording alone (zeros where a context was sent): the
    two carry different weights."""
    sent = np.zeros((len(texts), len(CATEGORIES)), dtype=np.float32)
    worded = np.zeros_like(sent)
    for row, (text, context) in enumerate(zip(texts, contexts, strict=True)):
        if context is not None:
            sent[row] = category_prior(merged_context(text, context))
        else:
            worded[row] = category_prior(context_from_text(text))
    return sent, worded


class ExemplarClassifier:
    """Category from the nearest labelled exemplars, shifted by priors from the pattern's context.

    Each category scores the mean cosine similarity of its ``top_k`` nearest exemplars plus the
    weighted context prior; the scores divided by a temperature go through a softmax. The
    weights decide the answer; the temperature only calibrates it (fitted for the likelihood of
    the development labels), so a close call shows as a low maximum probability. Priority comes
    from evidence and impact (:mod:`.priority`).
    """

    def __init__(self, embedder: Embedder, settings: ExemplarSettings | None = None) -> None:
        """Classify with ``embedder``; the exemplars are embedded on first use."""
        self._embedder = embedder
        self.settings = settings or ExemplarSettings()
        self.model_id = f"nearest-exemplar:{embedder.model_id}"
        self._exemplars: list[FloatArray] | None = None

    def similarity_scores(self, texts: Sequence[str]) -> FloatArray:
        """Per text and category, the mean similarity of the ``top_k`` nearest exemplars."""
        if self._exemplars is None:  # here, on the inference thread, not in the constructor
            self._exemplars = [self._embedder.embed(list(EXEMPLARS[c])) for c in CATEGORIES]
        vecs = self._embedder.embed(list(texts))
        k = self.settings.top_k
        columns = []
        for exemplars in self._exemplars:
            sims = np.sort(vecs @ exemplars.T, axis=1)[:, ::-1][:, : min(k, exemplars.shape[0])]
            columns.append(sims.mean(axis=1))
        return np.asarray(np.stack(columns, axis=1), dtype=np.float32)

    def category_probabilities(
        self, similarities: FloatArray, priors: tuple[FloatArray, FloatArray]
    ) -> FloatArray:
        """Calibrated category probabilities from similarity scores and :func:`category_priors`."""
        sent, worded = priors
        settings = self.settings
        scores = similarities + settings.context_weight * sent + settings.wording_weight * worded
        return _softmax(scores / settings.temperature)

    def classify(
        self, texts: Sequence[str], contexts: Sequence[PatternContext | None] | None = None
    ) -> list[Classification]:
        """Return category and priority with their probabilities for every text. Blocking."""
        if not texts:
            return []
        given = list(contexts) if contexts is not None else [None] * len(texts)
        probs = self.category_probabilities(self.similarity_scores(texts), category_priors(texts, given))
        out = []
        for text, context, p in zip(texts, given, probs, strict=True):
            category = CATEGORIES[int(np.argmax(p))]
            assessment = assess_priority(text, category, merged_context(text, context))
            out.append(
                Classification(
                    category=category,
                    priority=assessment.priority,
                    category_scores={label: float(v) for label, v in zip(CATEGORIES, p, strict=True)},
                    priority_scores=assessment.scores,
                    priority_reason=assessment.reason,
                )
            )
        return out
