"""Request coalescing: concurrent requests for one role share a single inference batch.

A handler submits its items (texts, or query/document pairs) and awaits its own slice of the
results. One worker per role takes everything that queued up while the previous batch was
running (up to ``max_batch_texts`` items), runs it as one call on the model executor and hands
each request its part. Under load, batches grow by themselves; handlers announce themselves
(:meth:`RequestBatcher.expecting`) while they read their body, so the worker waits a moment
(at most ``max_wait_ms``) only for requests that are really on their way. A lone request on
an idle server is answered at once instead of waiting for company that is not coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from homeiq_addon.api.errors import OverloadedError
from homeiq_addon.settings import BatchingOptions

_LOGGER = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(slots=True)
class _Job(Generic[ItemT, ResultT]):
    items: Sequence[ItemT]
    future: asyncio.Future[list[ResultT]]


@dataclass(slots=True)
class BatcherStats:
    """Counters for /v1/models and the benchmark: how much coalescing happened."""

    requests: int = 0
    batches: int = 0
    items: int = 0
    rejected: int = 0
    largest_batch: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


class RequestBatcher(Generic[ItemT, ResultT]):
    """Coalesce concurrent submissions into batches run one at a time on ``executor``.

    ``run_batch`` is blocking (it runs in the executor) and must return one result per item,
    in order. An exception it raises is delivered to every request of that batch.
    """

    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[ItemT]], Sequence[ResultT]],
        executor: Executor,
        options: BatchingOptions,
    ) -> None:
        self.name = name
        self._run_batch = run_batch
        self._executor = executor
        self._options = options
        self._pending: deque[_Job[ItemT, ResultT]] = deque()
        self._wakeup = asyncio.Event()
        self._arrival = asyncio.Event()  # a submit, or an expected request that gave up
        self._expected = 0
        self._worker: asyncio.Task[None] | None = None
        self.stats = BatcherStats()

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return len(self._pending)

    def start(self) -> None:
        """Start the worker task (on the running loop)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")

    async def close(self) -> None:
        """Stop the worker; requests still waiting are answered 503."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(OverloadedError("The server is shutting down.", retry_after_s=5))

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Queue ``items`` for the next batch and wait for their results."""
        if len(self._pending) >= self._options.max_queue:
            self.stats.rejected += 1
            raise OverloadedError(
                f"Too many {self.name} requests are waiting ({self._options.max_queue}); try again shortly."
            )
        future: asyncio.Future[list[ResultT]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(items, future))
        self.stats.requests += 1
        self._wakeup.set()
        self._arrival.set()
        return await future

    def _take_batch(self) -> list[_Job[ItemT, ResultT]]:
        """Oldest requests first, up to the item limit (a single larger request goes alone)."""
        batch: list[_Job[ItemT, ResultT]] = []
        count = 0
        while self._pending:
            job = self._pending[0]
            if job.future.done():  # the client went away while waiting
                self._pending.popleft()
                continue
            if batch and count + len(job.items) > self._options.max_batch_texts:
                break
            batch.append(self._pending.popleft())
            count += len(job.items)
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            # Let handlers that are already runnable (bodies parsed) join this batch.
            await asyncio.sleep(0)
            await self._wait_for_expected(loop)
            batch = self._take_batch()
            if not batch:
                continue
            items = [item for job in batch for item in job.items]
            self._record(len(items))
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, items)
            except Exception as err:  # delivered to the waiting requests
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            if len(results) != len(items):
                mismatch = RuntimeError(
                    f"{self.name} batch returned {len(results)} results for {len(items)} items"
                )
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(mismatch)
                continue
            start = 0
            for job in batch:
                end = start + len(job.items)
                if not job.future.done():
                    job.future.set_result(list(results[start:end]))
                start = end

    async def _wait_for_expected(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait (up to max_wait_ms) for requests whose handlers started but have not submitted.

        A lone request never waits: nobody else is expected. Under concurrency this gathers
        the requests that are a few event-loop steps away into the same batch.
        """
        deadline = loop.time() + self._options.max_wait_ms / 1000
        while self._expected > 0 and self._queued_items() < self._options.max_batch_texts:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrival.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrival.wait(), remaining)

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Mark a request on its way to :meth:`submit` (while its body is read and checked)."""
        self._expected += 1
        try:
            yield
        finally:
            self._expected -= 1
            self._arrival.set()

    def _queued_items(self) -> int:
        return sum(len(job.items) for job in self._pending)

    def _record(self, size: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += size
        stats.largest_batch = max(stats.largest_batch, size)
        stats.batch_sizes[size] = stats.batch_sizes.get(size, 0) + 1
