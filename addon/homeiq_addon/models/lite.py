"""The ``lite`` profile: reranking and classification served by the embedding model alone.

For small boards and offline demos. The ``model_id`` of each says what really served it
("cosine:<embedding id>", "nearest-label:<embedding id>"), so nothing degrades silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .labels import category_description, priority_description
from .types import CATEGORIES, PRIORITIES, Classification, Embedder, FloatArray

# Cosine similarities between sentences sit in a narrow band; this temperature turns them
# into label probabilities that are not all ≈ uniform.
LABEL_TEMPERATURE = 0.05


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


def _softmax(x: FloatArray) -> FloatArray:
    z = x / LABEL_TEMPERATURE
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


class NearestLabelClassifier:
    """Label probabilities from the similarity of the text to each label's description."""

    def __init__(self, embedder: Embedder) -> None:
        """Classify with ``embedder``; label descriptions are embedded on first use."""
        self._embedder = embedder
        self.model_id = f"nearest-label:{embedder.model_id}"
        self._labels: tuple[FloatArray, FloatArray] | None = None

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """Return category and priority with their probabilities for every text. Blocking."""
        if not texts:
            return []
        if self._labels is None:  # here, on the inference thread, not in the constructor
            self._labels = (
                self._embedder.embed([category_description(c) for c in CATEGORIES]),
                self._embedder.embed([priority_description(p) for p in PRIORITIES]),
            )
        vecs = self._embedder.embed(list(texts))
        cat = _softmax(vecs @ self._labels[0].T)
        pri = _softmax(vecs @ self._labels[1].T)
        return [
            Classification(
                category=CATEGORIES[int(np.argmax(c))],
                priority=PRIORITIES[int(np.argmax(p))],
                category_scores={label: float(v) for label, v in zip(CATEGORIES, c, strict=True)},
                priority_scores={label: float(v) for label, v in zip(PRIORITIES, p, strict=True)},
            )
            for c, p in zip(cat, pri, strict=True)
        ]
