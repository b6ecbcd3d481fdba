"""Cross-encoder reranking on OpenVINO: real text pairs, batched, sigmoid scores.

Our XLM-R graph runs packed (packing.py): several (query, document) pairs share a row, each
attending only to itself, and the head reads each pair's own first token. A graph that cannot be
packed runs one pair a row, padded to its batch's length bucket.

Our converted XLM-R graph takes ``inputs_embeds``: the 250k-word table stays outside the
compiled model as a memory-mapped numpy array (only the rows used are read), because a
statically quantized graph would expand it to ≈1.1 GB of FP32 when compiled. Pre-converted
OpenVINO rerankers get the same treatment when they are cached (word_table.py) and then take
``input_ids`` as well; one whose lookup could not be taken out is served as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from homeiq_addon.pipeline import DEFAULT_QUERY

from .batching import bucket_batch, pad_ids
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
from .packing import FIRST_TOKENS, packed_feed
from .types import FloatArray
from .word_table import WordTable

_LOGGER = logging.getLogger(__name__)


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float32)


class OVReranker(BucketedModel):
    """A sequence-classification model with one logit per (query, document) pair."""

    def __init__(self, model_dir: Path, model_id: str, options: LoadOptions) -> None:
        """Compile the model, map the word-embedding table and run a sample request (unless told
        not to)."""
        self.model_id = model_id
        info = read_info(model_dir)
        self.max_length = int(info.get("max_length") or config_max_length(model_dir, 512, offset=2))
        self._tok = load_tokenizer(model_dir, self.max_length)
        # Keep the query whole; cut the document when the pair is too long.
        self._tok.enable_truncation(self.max_length, strategy="only_second")
        self._pad = pad_token_id(self._tok, 1)
        super().__init__(options, model_dir)
        self._compiled = self._compile_packed(model_dir / "openvino_model.xml", head=True)
        self._inputs = {port.get_any_name() for port in self._compiled.inputs}
        self._table: WordTable | None = None
        if "inputs_embeds" in self._inputs:
            if not info.get("embeddings"):
                raise ValueError("model takes inputs_embeds but has no word-embedding table")
            self._table = WordTable(model_dir, info)
        else:
            _LOGGER.warning(
                "Reranker %s keeps its word-embedding table inside the graph: expect high memory use",
                model_id,
            )
        self._request = self._compiled.create_infer_request()
        if options.warm:
            self.warm()

    def _sample_request(self) -> None:
        self._score(DEFAULT_QUERY, [SAMPLE_TEXT])  # /v1/suggest ranks with this query by default

    def _warm_shape(self, batch: int, length: int) -> None:
        if self.packed:
            self._run_packed([[0]] * batch, [[self._pad] * length], batch, length)
        else:
            self._run([[self._pad]] * batch, batch, length)

    def encode_pairs(self, query: str, documents: Sequence[str]) -> list[list[int]]:
        """Token ids of each (query, document) pair, as the tokenizer's pair template builds them."""
        pairs = [(query, d) for d in documents]
        try:
            return token_rows(self._tok, pairs)
        except Exception:  # tokenizers raises a bare Exception when it cannot cut the document enough
            _LOGGER.debug("Query longer than a %d-token pair; cutting the query too", self.max_length)
        # The query alone is longer than a pair may be: cut the query too (longest first), so a
        # very long query still ranks the documents instead of failing the request with a 500.
        self._tok.enable_truncation(self.max_length, strategy="longest_first")
        try:
            return token_rows(self._tok, pairs)
        finally:
            self._tok.enable_truncation(self.max_length, strategy="only_second")

    def score(self, query: str, documents: Sequence[str]) -> FloatArray:
        """Return one sigmoid relevance score per document, in input order. Blocking."""
        with self._inference():
            return self._score(query, documents)

    def _score(self, query: str, documents: Sequence[str]) -> FloatArray:
        out = np.zeros(len(documents), dtype=np.float32)
        if not documents:
            return out
        rows = self.encode_pairs(query, documents)
        if self.packed:
            for p in self._plan_packed([len(r) for r in rows]):
                items, logits = self._run_packed(p.rows, rows, p.batch, p.length)
                out[list(items)] = logits
            return _sigmoid(out)
        for b in self._plan([len(r) for r in rows]):
            logits = self._run([rows[i] for i in b.indices], b.batch, b.length)
            out[list(b.indices)] = logits[: len(b.indices)]
        return _sigmoid(out)

    def _run_packed(
        self, rows: Sequence[Sequence[int]], pairs: Sequence[Sequence[int]], batch: int, length: int
    ) -> tuple[tuple[int, ...], FloatArray]:
        """The logits of the pairs that ``rows`` lay out (indices into ``pairs``), in the order of
        the items returned with them."""
        feed = packed_feed(rows, pairs, batch, length, self._pad, first_position=self._first_position)
        inputs: dict[str, np.ndarray[Any, Any]] = dict(feed.inputs)
        count = len(feed.items)
        # A power of two of first tokens, the rest pointing at token 0: the head sees few shapes.
        firsts = np.zeros(bucket_batch(count, batch * length), dtype=np.int64)
        firsts[:count] = feed.starts
        inputs[FIRST_TOKENS] = firsts
        logits = self._infer(inputs, inputs.pop("input_ids"))
        return feed.items, logits[:count]

    def _run(self, rows: Sequence[Sequence[int]], batch: int, length: int) -> FloatArray:
        ids, mask = pad_ids(rows, batch, length, self._pad)
        return self._infer({"attention_mask": mask}, ids)[:batch]

    def _infer(self, feed: dict[str, np.ndarray[Any, Any]], ids: np.ndarray[Any, Any]) -> FloatArray:
        """The first logit of each output row for ``feed`` and the token ``ids``, given to the graph
        as it takes them: looked up in the word table, and as ids where it reads them too."""
        if self._table is not None:
            feed["inputs_embeds"] = self._table.lookup(ids)
        if "input_ids" in self._inputs:  # a pre-converted graph: XLM-R's position ids come from it
            feed["input_ids"] = ids
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        result = self._run_request(self._request, feed)
        logits = np.asarray(result[self._compiled.outputs[0]], dtype=np.float32)
        return logits.reshape(logits.shape[0], -1)[:, 0]
