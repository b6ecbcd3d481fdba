"""Shape buckets and length-aware batch plans."""

from __future__ import annotations

from hypothesis import given, strategies as st

from homeiq_addon.models.batching import bucket_batch, bucket_length, pad_ids, plan_batches, warm_shapes


def test_buckets_round_up_to_8_tokens_then_16_and_powers_of_two() -> None:
    lengths = (1, 8, 9, 16, 17, 57, 64, 65, 81, 100, 300)
    assert [bucket_length(n, 256) for n in lengths] == [8, 8, 16, 16, 24, 64, 64, 80, 96, 112, 256]
    assert [bucket_batch(n, 32) for n in (1, 2, 3, 5, 31, 40)] == [1, 2, 4, 8, 32, 32]


@given(st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=300))
def test_plan_covers_every_item_once_within_the_budget(lengths: list[int]) -> None:
    batches = list(plan_batches(lengths, max_length=512, max_batch=32, token_budget=2048))
    seen = sorted(i for b in batches for i in b.indices)
    assert seen == list(range(len(lengths)))
    for b in batches:
        assert b.length % (8 if b.length <= 64 else 16) == 0 or b.length == 512
        assert b.batch & (b.batch - 1) == 0 and len(b.indices) <= b.batch <= 32
        assert all(min(lengths[i], 512) <= b.length for i in b.indices)
        assert b.batch * b.length <= 2048 or len(b.indices) == 1


def test_plan_sorts_by_length_so_padding_stays_small() -> None:
    lengths = [5, 200, 6, 190, 7, 180]
    batches = list(plan_batches(lengths, max_length=512, max_batch=4, token_budget=4096))
    assert [(b.indices, b.batch, b.length) for b in batches] == [((0, 2, 4), 4, 8), ((5, 3, 1), 4, 208)]


def test_padding_rows_have_a_real_token_and_masks_match() -> None:
    ids, mask = pad_ids([[5, 6, 7], [8]], batch=4, length=16, pad_id=0)
    assert ids.shape == mask.shape == (4, 16)
    assert mask.sum(axis=1).tolist() == [3, 1, 1, 1]
    assert ids[0, :3].tolist() == [5, 6, 7] and ids[0, 3:].sum() == 0


def test_warm_shapes_are_buckets_within_the_budget() -> None:
    shapes = warm_shapes(256, 32, 1024)
    assert (1, 16) in shapes and (8, 16) in shapes and (4, 24) in shapes and (2, 64) in shapes
    assert all(b * n <= 128 for b, n in shapes)
