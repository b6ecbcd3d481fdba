"""Length-aware batching with shape buckets.

Every new (batch, sequence) shape costs OpenVINO memory and 10-60 ms on first use, so
sequence lengths are rounded up to steps of an eighth of the next power of two, at least 8
(8 up to 64 tokens, 16 up to 128, 32 up to 256, 64 beyond: padding stays under a quarter),
and batch sizes to a power of two; texts are sorted by length so that padding stays small.

Why 8 for short texts: pattern texts are 7-32 tokens long, and 16-token steps padded 256 of
them to 46 % more tokens than they have (8-token steps: 22 %; static INT8 MiniLM 3.48x -> 3.66x
PyTorch). Why coarser steps for long inputs: each shape keeps its own kernels and buffers, and
long ones the most (attention grows with the square of the length). Run through every shape it
can be asked for, the reranker (XLM-R base, static INT8) grew by 503 MB with 16-token steps
beyond 64 tokens, and by 205 MB with these; the classifier's long prompts (177-343 tokens with
the benchmark's tokenizer) then ran at 0.96 of the speed.
Since flan-t5's own tokenizer made its prompts 67-149 tokens, the classifier buckets its
lengths twice as finely (``steps`` 16: a sixteenth of the next power of two; see classifier.py).

:func:`plan_packed` groups rows of several short texts instead of single texts (for a graph
rewritten by packing.py): the same shape buckets, with far fewer padding tokens in them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MIN_STEP = 8  # the smallest bucket step
LENGTH_STEPS = 8  # buckets per doubling of the length: steps of an eighth of the next power of two
SEQ_STEP = 16  # plan_batches: an item this much (and half) longer than the first starts a batch
# Tokens of one packed row (plan_packed). Measured on 256 pattern texts (7-32 tokens), AMX Xeon:
# static INT8 MiniLM embedded them 1.20-1.22x faster in rows of 48 than one text a row, 1.10-1.15x
# in rows of 64 and 1.0-1.1x in rows of 128 (attention grows with the square of a row); FP32
# 1.22-1.27x with 48 or 64. Rows of 48 hold 98 % real tokens there, rows of 32 only 82 %.
# The reranker's pairs (29 tokens on average, bge-reranker-base's tokenizer) on a Zen 1 EPYC
# (AVX2), FP32: rows of 48 1.12x faster than one pair a row, 64 1.07x, 96 1.07x, 128 1.09x.
ROW_TOKENS = 48

IntArray = npt.NDArray[np.int64]


def bucket_length(length: int, max_length: int, steps: int = LENGTH_STEPS) -> int:
    """Round ``length`` up to its bucket (with ``steps`` 8: a multiple of 8 up to 64, 16 up to
    128, 32 up to 256, 64 beyond: an eighth of the next power of two; with 16, a sixteenth, at
    least 8), capped at ``max_length``."""
    step = max(MIN_STEP, (1 << max(0, length - 1).bit_length()) // steps)
    return min(max_length, max(MIN_STEP, -(-length // step) * step))


def bucket_batch(size: int, max_batch: int) -> int:
    """Round ``size`` up to a power of two, capped at ``max_batch``."""
    out = 1
    while out < size:
        out *= 2
    return min(out, max_batch)


@dataclass(frozen=True, slots=True)
class Batch:
    """One inference: which items (indices into the input) and the padded shape."""

    indices: tuple[int, ...]
    batch: int
    length: int


def plan_batches(
    lengths: Sequence[int],
    *,
    max_length: int,
    max_batch: int = 32,
    token_budget: int = 2048,
    steps: int = LENGTH_STEPS,
) -> Iterator[Batch]:
    """Group items sorted by length into bucketed batches of at most ``token_budget`` tokens
    (``steps``: length buckets per doubling, see :func:`bucket_length`)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    start = 0
    while start < len(order):
        # The longest item in the batch decides its padded length; grow while it fits.
        end = start + 1
        first = bucket_length(lengths[order[start]], max_length, steps)
        while end < len(order) and end - start < max_batch:
            seq = bucket_length(lengths[order[end]], max_length, steps)
            if bucket_batch(end + 1 - start, max_batch) * seq > token_budget:
                break
            if seq > first + SEQ_STEP and seq > first * 3 // 2:
                break  # a much longer item: padding every short one to it would waste more than it saves
            end += 1
        seq = bucket_length(lengths[order[end - 1]], max_length, steps)
        yield Batch(tuple(order[start:end]), bucket_batch(end - start, max_batch), seq)
        start = end


@dataclass(frozen=True, slots=True)
class PackedBatch:
    """One inference of a packed graph: ``rows[r]`` lists the items (indices into the input) that
    share row ``r``, one after the other; the padded shape as in :class:`Batch`."""

    rows: tuple[tuple[int, ...], ...]
    batch: int
    length: int


def pack_rows(lengths: Sequence[int], row_tokens: int) -> list[tuple[int, ...]]:
    """Group items into rows of at most ``row_tokens`` tokens, longest first, each into the fullest
    row it fits (best-fit decreasing); an item of ``row_tokens`` or more has a row of its own."""
    rows: list[list[int]] = []
    fill: list[int] = []
    by_room: dict[int, list[int]] = {}  # tokens left -> the rows with that much room
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        n = lengths[i]
        room = next((r for r in range(n, row_tokens) if by_room.get(r)), None)
        if room is None:  # also an item of row_tokens or more: no room is that large
            rows.append([])
            fill.append(0)
            row = len(rows) - 1
        else:
            row = by_room[room].pop()
        rows[row].append(i)
        fill[row] += n
        if row_tokens - fill[row] > 0:
            by_room.setdefault(row_tokens - fill[row], []).append(row)
    return [tuple(r) for r in rows]


def plan_packed(
    lengths: Sequence[int],
    *,
    max_length: int,
    max_batch: int = 32,
    token_budget: int = 2048,
    row_tokens: int = ROW_TOKENS,
) -> Iterator[PackedBatch]:
    """Pack items into rows (:func:`pack_rows`), then group the rows as :func:`plan_batches` groups
    items: the shapes are the same buckets, only fewer of their tokens are padding."""
    rows = pack_rows(lengths, min(row_tokens, max_length))
    fills = [sum(lengths[i] for i in row) for row in rows]
    for b in plan_batches(fills, max_length=max_length, max_batch=max_batch, token_budget=token_budget):
        yield PackedBatch(tuple(rows[k] for k in b.indices), b.batch, b.length)


def pad_ids(rows: Sequence[Sequence[int]], batch: int, length: int, pad_id: int) -> tuple[IntArray, IntArray]:
    """Pad token id rows to (batch, length); extra rows get one real token so nothing divides by 0."""
    ids = np.full((batch, length), pad_id, dtype=np.int64)
    mask = np.zeros((batch, length), dtype=np.int64)
    for r, row in enumerate(rows):
        n = min(len(row), length)
        ids[r, :n] = row[:n]
        mask[r, :n] = 1
    mask[len(rows) :, 0] = 1
    return ids, mask


def every_shape(
    max_length: int, max_batch: int, token_budget: int, steps: int = LENGTH_STEPS
) -> list[tuple[int, int]]:
    """Every (batch, length) :func:`plan_batches` can ask for: each costs OpenVINO its own kernels
    and buffers once seen, so this is what a long-running add-on may come to hold (the benchmark
    runs them all to measure that bound)."""
    lengths = sorted({bucket_length(n, max_length, steps) for n in range(1, max_length + 1)})
    shapes = []
    for length in lengths:
        batch = 1
        while batch <= max_batch and (batch == 1 or batch * length <= token_budget):
            shapes.append((batch, length))
            batch *= 2
    return shapes
