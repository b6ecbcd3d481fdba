"""Shape buckets and length-aware batch plans."""

from __future__ import annotations

from hypothesis import given, strategies as st

from homeiq_addon.models.batching import (
    bucket_batch,
    bucket_length,
    every_shape,
    pack_rows,
    pad_ids,
    plan_batches,
    plan_packed,
)


def test_buckets_round_up_to_an_eighth_of_the_next_power_of_two_and_batches_to_powers_of_two() -> None:
    lengths = (1, 8, 9, 16, 17, 57, 64, 65, 81, 100, 128, 129, 200, 257, 300, 500, 600)
    assert [bucket_length(n, 512) for n in lengths] == [
        *(8, 8, 16, 16, 24, 64, 64),  # steps of 8 up to 64 tokens
        *(80, 96, 112, 128),  # 16 up to 128
        *(160, 224),  # 32 up to 256
        *(320, 320, 512, 512),  # 64 beyond, capped at the model's maximum
    ]
    assert bucket_length(300, 256) == 256
    assert [bucket_batch(n, 32) for n in (1, 2, 3, 5, 31, 40)] == [1, 2, 4, 8, 32, 32]


def test_sixteen_steps_a_doubling_halve_the_long_steps() -> None:
    """The classifier's buckets: a sixteenth of the next power of two, at least 8."""
    lengths = (1, 57, 67, 100, 129, 140, 149, 257, 300, 600)
    assert [bucket_length(n, 512, 16) for n in lengths] == [8, 64, 72, 104, 144, 144, 160, 288, 320, 512]
    assert (8, 144) in every_shape(512, 32, 2048, 16) and (8, 144) not in every_shape(512, 32, 2048)


@given(st.integers(min_value=1, max_value=4096), st.sampled_from([8, 16]))
def test_a_bucket_pads_less_than_a_quarter(length: int, steps: int) -> None:
    padded = bucket_length(length, 8192, steps)
    assert length <= padded < length + max(8, length * 2 / steps)


EVERY_SHAPE = {steps: set(every_shape(512, 32, 2048, steps)) for steps in (8, 16)}


@given(st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=300), st.sampled_from([8, 16]))
def test_plan_covers_every_item_once_within_the_budget(lengths: list[int], steps: int) -> None:
    batches = list(plan_batches(lengths, max_length=512, max_batch=32, token_budget=2048, steps=steps))
    seen = sorted(i for b in batches for i in b.indices)
    assert seen == list(range(len(lengths)))
    for b in batches:
        longest = min(max(lengths[i] for i in b.indices), 512)
        assert b.length == bucket_length(longest, 512, steps)
        assert b.batch & (b.batch - 1) == 0 and len(b.indices) <= b.batch <= 32
        assert all(min(lengths[i], 512) <= b.length for i in b.indices)
        assert b.batch * b.length <= 2048 or len(b.indices) == 1
        assert (b.batch, b.length) in EVERY_SHAPE[steps]  # what the benchmark's memory bound runs


def test_plan_sorts_by_length_so_padding_stays_small() -> None:
    lengths = [5, 200, 6, 190, 7, 180]
    batches = list(plan_batches(lengths, max_length=512, max_batch=4, token_budget=4096))
    assert [(b.indices, b.batch, b.length) for b in batches] == [((0, 2, 4), 4, 8), ((5, 3, 1), 4, 224)]


def test_padding_rows_have_a_real_token_and_masks_match() -> None:
    ids, mask = pad_ids([[5, 6, 7], [8]], batch=4, length=16, pad_id=0)
    assert ids.shape == mask.shape == (4, 16)
    assert mask.sum(axis=1).tolist() == [3, 1, 1, 1]
    assert ids[0, :3].tolist() == [5, 6, 7] and ids[0, 3:].sum() == 0


def test_every_shape_is_each_bucket_once() -> None:
    listed = every_shape(256, 32, 1024)
    assert len(listed) == len(set(listed))
    assert (32, 32) in listed and (1, 256) in listed and (4, 256) in listed and (8, 256) not in listed


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=300), st.sampled_from([16, 48, 64]))
def test_packed_rows_hold_every_item_once_and_never_overflow(lengths: list[int], row_tokens: int) -> None:
    rows = pack_rows(lengths, row_tokens)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    for row in rows:
        assert sum(lengths[i] for i in row) <= row_tokens or len(row) == 1  # a long item: alone
    # Best fit decreasing never leaves two rows that could have been one.
    fills = sorted(sum(lengths[i] for i in row) for row in rows)
    assert len(fills) < 2 or fills[0] + fills[1] > row_tokens or 0 in fills[:1]


def test_packing_fills_rows_where_one_text_a_row_pads() -> None:
    lengths = [20, 28, 21, 27, 24, 24, 9, 7, 30]  # 190 tokens
    rows = pack_rows(lengths, 48)
    assert [tuple(lengths[i] for i in row) for row in rows] == [(30, 9, 7), (28, 20), (27, 21), (24, 24)]
    # 4 x 48 = 192 tokens computed; one text a row, in length buckets: 9 x 32 = 288


@given(st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=300))
def test_packed_plans_use_the_same_shape_buckets(lengths: list[int]) -> None:
    truncated = [min(n, 512) for n in lengths]  # as the tokenizer truncates
    batches = list(plan_packed(truncated, max_length=512, max_batch=32, token_budget=2048))
    assert sorted(i for b in batches for row in b.rows for i in row) == list(range(len(lengths)))
    for b in batches:
        assert len(b.rows) <= b.batch and b.batch & (b.batch - 1) == 0
        assert all(sum(truncated[i] for i in row) <= b.length for row in b.rows)
        assert (b.batch, b.length) in EVERY_SHAPE[8]  # the memory bound the benchmark runs still holds
