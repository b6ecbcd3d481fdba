"""Request coalescing: concurrent submissions share batches, bounded in size and queue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from homeiq_addon.api.coalescing import RequestBatcher
from homeiq_addon.api.errors import OverloadedError
from homeiq_addon.settings import BatchingOptions


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=True)


class Recorder:
    """A batch function that records each batch it runs and can be held back."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list[str]) -> list[str]:
        self.gate.wait(timeout=10)
        self.batches.append(list(items))
        return [item.upper() for item in items]


async def test_concurrent_requests_are_coalesced_and_each_gets_its_own_results(
    executor: ThreadPoolExecutor,
) -> None:
    recorder = Recorder()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions(max_batch_texts=64))
    batcher.start()
    try:
        results = await asyncio.gather(*(batcher.submit([f"t{i}a", f"t{i}b"]) for i in range(16)))
    finally:
        await batcher.close()
    assert results == [[f"T{i}A", f"T{i}B"] for i in range(16)]
    assert len(recorder.batches) < 16
    assert sum(len(b) for b in recorder.batches) == 32
    assert batcher.stats.requests == 16
    assert batcher.stats.largest_batch > 2


async def test_requests_arriving_while_a_batch_runs_form_the_next_batch(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    recorder.gate.clear()  # hold the first batch in the executor
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions(max_batch_texts=64))
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(["first"]))
        await asyncio.sleep(0.05)
        later = [asyncio.ensure_future(batcher.submit([f"x{i}"])) for i in range(5)]
        await asyncio.sleep(0.05)
        recorder.gate.set()
        await asyncio.gather(first, *later)
    finally:
        await batcher.close()
    assert recorder.batches == [["first"], [f"x{i}" for i in range(5)]]


async def test_batch_size_is_bounded_but_a_large_request_still_runs_alone(
    executor: ThreadPoolExecutor,
) -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions(max_batch_texts=4))
    batcher.start()
    try:
        blocker = asyncio.ensure_future(batcher.submit(["block"]))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(batcher.submit([f"a{i}", f"b{i}"])) for i in range(3)]
        big = asyncio.ensure_future(batcher.submit([f"big{i}" for i in range(6)]))
        await asyncio.sleep(0.05)
        recorder.gate.set()
        await asyncio.gather(blocker, *waiting, big)
    finally:
        await batcher.close()
    sizes = [len(b) for b in recorder.batches]
    assert sizes == [1, 4, 2, 6]


async def test_full_queue_answers_overloaded_with_retry_after(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions(max_queue=2))
    batcher.start()
    try:
        running = asyncio.ensure_future(batcher.submit(["running"]))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(batcher.submit([f"q{i}"])) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as excinfo:
            await batcher.submit(["one too many"])
        assert excinfo.value.status == 503
        assert excinfo.value.headers["Retry-After"] == "1"
        assert batcher.stats.rejected == 1
        recorder.gate.set()
        assert await running == ["RUNNING"]
        assert [await q for q in queued] == [["Q0"], ["Q1"]]
    finally:
        await batcher.close()


async def test_a_failing_batch_fails_every_request_in_it_and_the_worker_goes_on(
    executor: ThreadPoolExecutor,
) -> None:
    calls = 0

    def flaky(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("inference failed")
        return items

    batcher = RequestBatcher("test", flaky, executor, BatchingOptions())
    batcher.start()
    try:
        results = await asyncio.gather(batcher.submit(["a"]), batcher.submit(["b"]), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert await batcher.submit(["c"]) == ["c"]
    finally:
        await batcher.close()


async def test_a_batch_returning_the_wrong_number_of_results_is_an_error(
    executor: ThreadPoolExecutor,
) -> None:
    batcher = RequestBatcher("test", lambda items: items[:-1], executor, BatchingOptions())
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="2 items"):
            await batcher.submit(["a", "b"])
    finally:
        await batcher.close()


async def test_a_cancelled_request_is_skipped(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions())
    batcher.start()
    try:
        blocker = asyncio.ensure_future(batcher.submit(["block"]))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.submit(["gone"]))
        kept = asyncio.ensure_future(batcher.submit(["kept"]))
        await asyncio.sleep(0)
        gone.cancel()
        recorder.gate.set()
        await asyncio.gather(blocker, kept)
    finally:
        await batcher.close()
    assert recorder.batches == [["block"], ["kept"]]


async def test_closing_answers_waiting_requests_with_503(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions())
    batcher.start()
    running = asyncio.ensure_future(batcher.submit(["running"]))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(batcher.submit(["waiting"]))
    await asyncio.sleep(0)
    await batcher.close()
    recorder.gate.set()
    with pytest.raises(OverloadedError):
        await waiting
    running.cancel()


async def test_a_request_on_its_way_joins_the_batch_of_an_earlier_one(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions(max_wait_ms=10_000))
    batcher.start()
    try:
        release = asyncio.Event()

        async def slow_handler() -> list[str]:
            with batcher.expecting():  # e.g. still reading its body
                await release.wait()
            return await batcher.submit(["late"])

        late = asyncio.ensure_future(slow_handler())
        await asyncio.sleep(0)
        early = asyncio.ensure_future(batcher.submit(["early"]))
        await asyncio.sleep(0.05)
        assert recorder.batches == []  # the worker waits for the announced request
        release.set()
        assert await asyncio.gather(early, late) == [["EARLY"], ["LATE"]]
    finally:
        await batcher.close()
    assert recorder.batches == [["early", "late"]]


async def test_a_lone_request_does_not_wait_for_company(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions(max_wait_ms=60_000))
    batcher.start()
    try:
        # Nobody else is on the way, so the one-minute wait never applies.
        assert await asyncio.wait_for(batcher.submit(["alone"]), timeout=10) == ["ALONE"]
    finally:
        await batcher.close()


async def test_a_request_that_gives_up_on_its_way_stops_the_wait(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    batcher = RequestBatcher("test", recorder, executor, BatchingOptions(max_wait_ms=60_000))
    batcher.start()
    try:
        release = asyncio.Event()

        async def invalid_request() -> None:
            with batcher.expecting():
                await release.wait()
                raise ValueError("422: invalid body")

        failing = asyncio.ensure_future(invalid_request())
        await asyncio.sleep(0)
        early = asyncio.ensure_future(batcher.submit(["early"]))
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.wait_for(early, timeout=10) == ["EARLY"]
        with pytest.raises(ValueError, match="invalid body"):
            await failing
    finally:
        await batcher.close()
