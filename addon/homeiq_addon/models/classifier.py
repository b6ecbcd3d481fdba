"""Rank classification with flan-t5 on OpenVINO.

For each text, a prompt per question (category, priority) defines the labels (and renders the
pattern's context in one line when the client sent one; with a context, the priority comes from
its evidence (priority.py), so only the category is asked). The encoder runs once per prompt
(all prompts of a request go through it in length-sorted batches);
then the decoder scores each label's answer tokens: a label's score is the log-likelihood
of its tokens, and the probabilities are the softmax of those scores over the labels.

When every label of a question is a single token (as with flan-t5's vocabulary), one
decoder step per prompt scores all labels at once (one row, batched across prompts), and the
decoder's output head is cut to those label tokens at load (label_head.py): a softmax over the
labels needs only their logits. Otherwise each label gets its own decoder row over the full
vocabulary. Nothing is parsed from generated text and there is no default label: every result
carries the full distribution.

Runs our converter's graphs, or a pre-converted optimum-intel export as it is (its decoder's
logits are turned into log-probabilities here; a stateful decoder's cache is reset per call).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from . import runtime
from .batching import bucket_batch, pad_ids
from .cross_attention import absorb_cross_attention
from .label_head import LABEL_LOGITS, label_logits_head
from .labels import category_prompt, priority_prompt
from .loaded import (
    SAMPLE_TEXT,
    BucketedModel,
    LoadOptions,
    config_max_length,
    load_tokenizer,
    pad_token_id,
    read_config,
    read_info,
    token_rows,
)
from .pattern_context import merged_context
from .priority import assess_priority
from .types import CATEGORIES, PRIORITIES, Classification, FloatArray, PatternContext

_LOGGER = logging.getLogger(__name__)
QUESTIONS = ((CATEGORIES, category_prompt), (PRIORITIES, priority_prompt))
# Without a context, the priority is the model's answer to the priority question.
WORDING_ONLY_REASON = "No evidence sent; judged from the wording by the language model"
ENCODER_FILE = "openvino_encoder_model.xml"
DECODER_FILE = "openvino_decoder_model.xml"


@dataclass(frozen=True, slots=True)
class DecoderLayout:
    """How to call a T5 decoder graph: ours (cache-less, log-probabilities out) or optimum-intel's
    (``input_ids`` + ``beam_idx`` with the cache as internal state, or without a cache; logits)."""

    ids: str
    beam_idx: bool
    stateful: bool
    log_probs: bool
    label_logits: bool = False  # the head cut to the label tokens: one column per label token

    @classmethod
    def of(cls, compiled: ov.CompiledModel, request: ov.InferRequest) -> DecoderLayout:
        """Read the layout from the decoder's inputs and outputs; ValueError when unsupported."""
        names = {port.get_any_name() for port in compiled.inputs}
        ids = "decoder_input_ids" if "decoder_input_ids" in names else "input_ids"
        known = {ids, "encoder_hidden_states", "encoder_attention_mask", "beam_idx"}
        if not {ids, "encoder_hidden_states", "encoder_attention_mask"} <= names or names - known:
            raise ValueError(
                "unsupported decoder graph (inputs: "
                f"{', '.join(sorted(names))}); use a Hugging Face model or an optimum-intel export"
            )
        stateful = bool(request.query_state())
        output = compiled.outputs[0].get_names()
        return cls(ids, "beam_idx" in names, stateful, "log_probs" in output, LABEL_LOGITS in output)


def _logsumexp(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    top = x.max(axis=-1, keepdims=True)
    return np.asarray(top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True)))


def _softmax(scores: Sequence[float]) -> FloatArray:
    x = np.asarray(scores, dtype=np.float64)
    e = np.exp(x - x.max())
    return np.asarray(e / e.sum(), dtype=np.float32)


class OVClassifier(BucketedModel):
    """flan-t5 encoder + cache-less decoder returning next-token log-probabilities."""

    # Length buckets a sixteenth of the next power of two apart, not an eighth: the prompts are
    # 67-149 tokens (the category question ~140), and eighths padded 200 of them to 15 % more
    # tokens than they have (PyTorch, padding each batch to its longest: 3 %). On a Zen 1 EPYC
    # (AVX2) classify ran 1.07x faster, and every shape the classifier can run (116 instead of
    # 80) held 9 MB more.
    length_steps = 16

    def __init__(self, model_dir: Path, model_id: str, options: LoadOptions) -> None:
        """Compile encoder and decoder; tokenize the label answers once."""
        self.model_id = model_id
        info = read_info(model_dir)
        missing = [f for f in (ENCODER_FILE, DECODER_FILE) if not (model_dir / f).exists()]
        if missing:
            raise ValueError(
                f"a classifier model needs an encoder and a decoder; {', '.join(missing)} missing"
            )
        self.max_length = int(info.get("max_length") or config_max_length(model_dir, 512))
        self._tok = load_tokenizer(model_dir, self.max_length)
        self._pad = pad_token_id(self._tok, 0)
        start = info.get("decoder_start_token_id", read_config(model_dir).get("decoder_start_token_id"))
        self._start = int(start if start is not None else self._pad)
        super().__init__(options, model_dir)
        # Each label's answer tokens, e.g. ["▁energy"].
        self.answers = [
            [self._tok.encode(label, add_special_tokens=False).ids for label in labels]
            for labels, _ in QUESTIONS
        ]
        if any(not ans for answers in self.answers for ans in answers):
            raise ValueError("a label encodes to no tokens with this tokenizer")
        self.single_step = [all(len(a) == 1 for a in answers) for answers in self.answers]
        self._enc = self._compile(model_dir / ENCODER_FILE)
        self._dec = self._compile(self._decoder_graph(model_dir / DECODER_FILE))
        self._enc_req = self._enc.create_infer_request()
        self._dec_req = self._dec.create_infer_request()
        self._layout = DecoderLayout.of(self._dec, self._dec_req)
        if options.warm:
            self.warm()

    def _decoder_graph(self, ir_file: Path) -> ov.Model:
        """The decoder as it runs here: its cross-attention reads the encoder states directly
        (cross_attention.py: no key/value projection of every encoder token), and its head is
        cut to the label tokens when every label is one token (the columns then follow
        ``self._columns``). Either rewrite is skipped for a graph it does not recognise, and the
        first one in f16 (ARM's FP16 candidate): oneDNN on ARM has no f16 kernel for the absorbed
        attention's matrix products, which broadcast their weights over the batch ("could not
        create a primitive descriptor" at the first run, under qemu's aarch64 emulation). An absorbed
        graph without broadcasting ran there, but held 157 MB more through every shape on x86."""
        model = runtime.core().read_model(ir_file)
        f16 = self._options.inference_precision == "f16"
        self.absorbed_layers = 0 if f16 else absorb_cross_attention(model)
        if not self.absorbed_layers and not f16:
            _LOGGER.debug("Cross-attention of %s not recognised; projecting the encoder states", ir_file)
        self._columns: dict[int, int] = {}
        if not all(self.single_step):
            return model
        tokens = sorted({answer[0] for answers in self.answers for answer in answers})
        if not label_logits_head(model, tokens):
            _LOGGER.debug("Decoder head of %s not recognised; scoring the whole vocabulary", ir_file)
            return model
        self._columns = {token: column for column, token in enumerate(tokens)}
        return model

    def _column(self, token: int) -> int:
        """Where a label token's score is in the decoder's output."""
        return self._columns[token] if self._layout.label_logits else token

    def _sample_request(self) -> None:
        self._classify([SAMPLE_TEXT], [None])

    def _warm_shape(self, batch: int, length: int) -> None:
        hidden, mask = self._encode([[self._pad]] * batch, batch, length)
        self._decode(np.full((batch, 1), self._start, dtype=np.int64), hidden, mask)

    def classify(
        self, texts: Sequence[str], contexts: Sequence[PatternContext | None] | None = None
    ) -> list[Classification]:
        """Return category and priority with their probabilities for every text. Blocking.

        A text's context goes into both prompts; with a context, the priority comes from its
        evidence and impact (:func:`.priority.assess_priority`) instead of the model's answer.
        """
        given = list(contexts) if contexts is not None else [None] * len(texts)
        with self._inference():
            return self._classify(texts, given)

    def _classify(
        self, texts: Sequence[str], contexts: Sequence[PatternContext | None]
    ) -> list[Classification]:
        # With a context, the priority comes from its evidence, not from the model: only the
        # category question is asked then (a suggestion run sends contexts: half the prompts).
        asked = [(t, q) for t, c in enumerate(contexts) for q in range(len(QUESTIONS)) if q == 0 or c is None]
        rows = token_rows(self._tok, [QUESTIONS[q][1](texts[t], contexts[t]) for t, q in asked])
        probs: dict[tuple[int, int], FloatArray] = {}
        for b in self._plan([len(r) for r in rows]):
            hidden, mask = self._encode([rows[i] for i in b.indices], b.batch, b.length)
            # One decoder step for every prompt of the batch whose labels are single tokens.
            first = self._decode(np.full((b.batch, 1), self._start, dtype=np.int64), hidden, mask)[:, 0, :]
            for pos, idx in enumerate(b.indices):
                question = asked[idx][1]
                answers = self.answers[question]
                if self.single_step[question]:
                    probs[asked[idx]] = _softmax([float(first[pos, self._column(a[0])]) for a in answers])
                else:
                    probs[asked[idx]] = self._score_rows(hidden[pos], mask[pos], answers)
        out = []
        for t, (text, context) in enumerate(zip(texts, contexts, strict=True)):
            cat = probs[t, 0]
            category = CATEGORIES[int(np.argmax(cat))]
            category_scores = {label: float(p) for label, p in zip(CATEGORIES, cat, strict=True)}
            if context is None:
                pri = probs[t, 1]
                priority = PRIORITIES[int(np.argmax(pri))]
                priority_scores = {label: float(p) for label, p in zip(PRIORITIES, pri, strict=True)}
                reason = WORDING_ONLY_REASON
            else:
                assessment = assess_priority(text, category, merged_context(text, context))
                priority, priority_scores, reason = assessment.priority, assessment.scores, assessment.reason
            out.append(Classification(category, priority, category_scores, priority_scores, reason))
        return out

    def _encode(
        self, rows: Sequence[Sequence[int]], batch: int, length: int
    ) -> tuple[FloatArray, np.ndarray[Any, Any]]:
        ids, mask = pad_ids(rows, batch, length, self._pad)
        result = self._run_request(self._enc_req, {"input_ids": ids, "attention_mask": mask})
        hidden = result[self._enc.outputs[0]]
        return np.asarray(hidden, dtype=np.float32), mask

    def _decode(
        self, dec_in: np.ndarray[Any, Any], hidden: FloatArray, mask: np.ndarray[Any, Any]
    ) -> FloatArray:
        """Log-probabilities of the next token at every decoder position: (batch, steps, vocab);
        with the head cut to the label tokens, their logits: (batch, steps, label tokens)."""
        layout = self._layout
        feed = {
            layout.ids: dec_in,
            "encoder_hidden_states": np.ascontiguousarray(hidden),
            "encoder_attention_mask": np.ascontiguousarray(mask),
        }
        if layout.beam_idx:
            feed["beam_idx"] = np.arange(dec_in.shape[0], dtype=np.int32)
        if layout.stateful:
            self._dec_req.reset_state()  # no cache carried over from the previous call
        out = np.asarray(self._run_request(self._dec_req, feed)[self._dec.outputs[0]], dtype=np.float32)
        if layout.log_probs or layout.label_logits:  # the labels' softmax needs no normalizer
            return out
        return np.asarray(out - _logsumexp(out), dtype=np.float32)

    def _score_rows(
        self, hidden: FloatArray, mask: np.ndarray[Any, Any], answers: list[list[int]]
    ) -> FloatArray:
        """Multi-token labels: one decoder row per label (teacher forcing), summed log-probs."""
        steps = max(map(len, answers))
        n = bucket_batch(len(answers), 8)
        dec_in = np.full((n, steps), self._pad, dtype=np.int64)
        for r, ans in enumerate(answers):
            seq = [self._start, *ans[:-1]]
            dec_in[r, : len(seq)] = seq
        logp = self._decode(
            dec_in, np.broadcast_to(hidden, (n, *hidden.shape)), np.broadcast_to(mask, (n, *mask.shape))
        )
        return _softmax(
            [sum(float(logp[r, t, tok]) for t, tok in enumerate(ans)) for r, ans in enumerate(answers)]
        )
