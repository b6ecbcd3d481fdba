"""Rank classification with flan-t5 on OpenVINO.

For each text, a prompt per question (category, priority) defines the labels; the encoder
runs once over all prompts of a batch, then the decoder scores each label's tokens. The
probability of a label is the softmax over labels of its sequence log-likelihood. Nothing
is parsed from generated text, and there is no default label: every result carries the
full distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import runtime
from .batching import bucket_batch, pad_ids, plan_batches, warm_shapes
from .labels import category_prompt, priority_prompt
from .loaded import LoadOptions, load_tokenizer, pad_token_id, read_info
from .types import CATEGORIES, PRIORITIES, Classification, FloatArray

QUESTIONS = ((CATEGORIES, category_prompt), (PRIORITIES, priority_prompt))


class OVClassifier:
    """flan-t5 encoder + cache-less decoder returning next-token log-probabilities."""

    def __init__(self, model_dir: Path, model_id: str, options: LoadOptions) -> None:
        """Compile encoder and decoder; tokenize the label answers once."""
        self.model_id = model_id
        info = read_info(model_dir)
        if not (model_dir / "openvino_decoder_model.xml").exists() or info.get("format") is None:
            raise ValueError(
                "classifier models must be converted by HomeIQ (encoder + label-scoring decoder)"
            )
        self.max_length = int(info.get("max_length", 512))
        self._tok = load_tokenizer(model_dir, self.max_length)
        self._pad = pad_token_id(self._tok, 0)
        self._start = int(info.get("decoder_start_token_id", self._pad))
        self._eos = int(info.get("eos_token_id", 1))
        self._options = options
        kw = {"device": options.device, "threads": options.threads, "cache_dir": options.cache_dir}
        self._enc = runtime.compile_model(model_dir / "openvino_encoder_model.xml", **kw)  # type: ignore[arg-type]
        self._dec = runtime.compile_model(model_dir / "openvino_decoder_model.xml", **kw)  # type: ignore[arg-type]
        self._enc_req = self._enc.create_infer_request()
        self._dec_req = self._dec.create_infer_request()
        # Each label's answer tokens, e.g. "▁energy" "</s>" (EOS makes it a complete answer).
        self._answers = [
            [[*self._tok.encode(label, add_special_tokens=False).ids, self._eos] for label in labels]
            for labels, _ in QUESTIONS
        ]
        if options.warm:
            for batch, length in warm_shapes(self.max_length, 8, options.token_budget):
                self._encode([[self._pad]] * batch, batch, length)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """Return category and priority with their probabilities for every text. Blocking."""
        prompts = [make(t) for t in texts for _, make in QUESTIONS]
        rows = [e.ids for e in self._tok.encode_batch(prompts)]
        probs: list[FloatArray] = [np.zeros(0, dtype=np.float32)] * len(rows)
        for b in plan_batches(
            [len(r) for r in rows],
            max_length=self.max_length,
            max_batch=self._options.max_batch,
            token_budget=self._options.token_budget,
        ):
            hidden, mask = self._encode([rows[i] for i in b.indices], b.batch, b.length)
            for pos, idx in enumerate(b.indices):
                question = idx % len(QUESTIONS)
                probs[idx] = self._score(hidden[pos], mask[pos], self._answers[question])
        out = []
        for t in range(len(texts)):
            cat, pri = probs[2 * t], probs[2 * t + 1]
            out.append(
                Classification(
                    category=CATEGORIES[int(np.argmax(cat))],
                    priority=PRIORITIES[int(np.argmax(pri))],
                    category_scores={label: float(p) for label, p in zip(CATEGORIES, cat, strict=True)},
                    priority_scores={label: float(p) for label, p in zip(PRIORITIES, pri, strict=True)},
                )
            )
        return out

    def _encode(
        self, rows: Sequence[Sequence[int]], batch: int, length: int
    ) -> tuple[FloatArray, np.ndarray[Any, Any]]:
        ids, mask = pad_ids(rows, batch, length, self._pad)
        hidden = self._enc_req.infer({"input_ids": ids, "attention_mask": mask})[self._enc.outputs[0]]
        return np.asarray(hidden, dtype=np.float32), mask

    def _score(self, hidden: FloatArray, mask: np.ndarray[Any, Any], answers: list[list[int]]) -> FloatArray:
        """Softmax over labels of log P(answer tokens | prompt), one decoder pass for all labels."""
        steps = max(map(len, answers))
        n = bucket_batch(len(answers), 8)
        dec_in = np.full((n, steps), self._pad, dtype=np.int64)
        for r, ans in enumerate(answers):
            seq = [self._start, *ans[:-1]]
            dec_in[r, : len(seq)] = seq
        enc = np.broadcast_to(hidden, (n, *hidden.shape))
        enc_mask = np.broadcast_to(mask, (n, *mask.shape))
        logp = self._dec_req.infer(
            {
                "decoder_input_ids": dec_in,
                "encoder_hidden_states": np.ascontiguousarray(enc),
                "encoder_attention_mask": np.ascontiguousarray(enc_mask),
            }
        )[self._dec.outputs[0]]
        totals = np.array(
            [sum(float(logp[r, t, tok]) for t, tok in enumerate(ans)) for r, ans in enumerate(answers)],
            dtype=np.float64,
        )
        totals -= totals.max()
        p = np.exp(totals)
        return np.asarray(p / p.sum(), dtype=np.float32)
