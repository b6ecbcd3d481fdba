"""Sentence embeddings on OpenVINO: masked mean pooling over real tokens, L2-normalised."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .batching import pad_ids, plan_batches
from .loaded import (
    SAMPLE_TEXT,
    BucketedModel,
    LoadOptions,
    config_max_length,
    load_tokenizer,
    pad_token_id,
    read_info,
    token_rows,
)
from .types import FloatArray

_LOGGER = logging.getLogger(__name__)


class OVEmbedder(BucketedModel):
    """An embedding model (our IR with pooling inside, or a pre-converted one with hidden states)."""

    def __init__(self, model_dir: Path, model_id: str, options: LoadOptions) -> None:
        """Compile the model in ``model_dir`` and run a sample request (unless told not to)."""
        self.model_id = model_id
        info = read_info(model_dir)
        self.max_length = int(info.get("max_length") or config_max_length(model_dir, 256))
        self._tok = load_tokenizer(model_dir, self.max_length)
        self._pad = pad_token_id(self._tok, 0)
        self._options = options
        self._lock = threading.Lock()
        self._compiled = self._compile(model_dir / "openvino_model.xml")
        self._inputs = {port.get_any_name() for port in self._compiled.inputs}
        self._request = self._compiled.create_infer_request()
        self._pooled = len(self._compiled.outputs[0].get_partial_shape()) == 2
        self.dim = int(info.get("dim") or self._compiled.outputs[0].get_partial_shape()[-1].get_length())
        if options.warm:
            self.warm()

    def _sample_request(self) -> None:
        self._embed([SAMPLE_TEXT])

    def _warm_shape(self, batch: int, length: int) -> None:
        self._run([[self._pad]] * batch, batch, length)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text after truncation (for request limits and batching)."""
        return [len(r) for r in token_rows(self._tok, texts)]

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """Return (len(texts), dim) L2-normalised embeddings. Blocking."""
        with self._lock:  # one inference at a time per model, whichever thread asks
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> FloatArray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        rows = token_rows(self._tok, texts)
        for b in plan_batches(
            [len(r) for r in rows],
            max_length=self.max_length,
            max_batch=self._options.max_batch,
            token_budget=self._options.token_budget,
        ):
            vecs = self._run([rows[i] for i in b.indices], b.batch, b.length)
            out[list(b.indices)] = vecs[: len(b.indices)]
        return out

    def _run(self, rows: Sequence[Sequence[int]], batch: int, length: int) -> FloatArray:
        ids, mask = pad_ids(rows, batch, length, self._pad)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        result = self._request.infer(feed)[self._compiled.outputs[0]]
        if self._pooled:
            return np.asarray(result, dtype=np.float32)
        # Pre-converted model: (batch, seq, dim) hidden states; pool over real tokens only.
        m = mask[..., None].astype(np.float32)
        pooled = (result * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norm, 1e-12), dtype=np.float32)
