"""Measure OpenVINO runtime settings for a few small cores instead of assuming them.

    PYTHONPATH=addon:. .venv-addon/bin/python scripts/bench_runtime.py [--work .cache/bench] [--rounds 5]

On the real all-MiniLM-L6-v2 IRs that ``bench_models.py`` converted (every precision ``auto``
tried), in one process, rounds interleaved, best of ``--rounds``:

- throughput on 256 pattern texts: the add-on's setting (LATENCY hint, one request using every
  allowed thread, texts packed into rows of the rewritten graph) against one text a row in
  length-sorted buckets, one thread, CPU pinning off, and the THROUGHPUT hint with one stream
  per core fed in parallel (an AsyncInferQueue); and length-sorted buckets against the same
  batches in arrival order;
- latency of one short text (median of 50 calls) for the same settings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "addon"), str(ROOT), str(ROOT / "scripts")]

import bench_api  # noqa: E402
import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402

from homeiq_addon.launch import minilm_model_dir  # noqa: E402
from homeiq_addon.models import runtime  # noqa: E402
from homeiq_addon.models.batching import (  # noqa: E402
    bucket_batch,
    bucket_length,
    pad_ids,
    plan_batches,
    plan_packed,
)
from homeiq_addon.models.cache import ModelCache  # noqa: E402
from homeiq_addon.models.loaded import load_tokenizer, token_rows  # noqa: E402
from homeiq_addon.models.other_work import OtherWork  # noqa: E402
from homeiq_addon.models.packing import packed_feed, packed_graph  # noqa: E402
from homeiq_addon.models.pattern_texts import pattern_texts  # noqa: E402
from homeiq_addon.models.types import Role  # noqa: E402

Feed = dict[str, Any]


def feeds(
    rows: Sequence[Sequence[int]], *, sort: bool, max_batch: int = 32, budget: int = 1024
) -> list[Feed]:
    """The inference inputs for ``rows``: the add-on's length-sorted buckets, or batches of the same
    sizes in arrival order (each padded to its longest text)."""
    lengths = [len(r) for r in rows]
    planned = list(plan_batches(lengths, max_length=256, max_batch=max_batch, token_budget=budget))
    out = []
    groups: list[tuple[Sequence[Sequence[int]], int, int]]
    if sort:
        groups = [([rows[i] for i in b.indices], b.batch, b.length) for b in planned]
    else:
        groups, start = [], 0
        for b in planned:
            chunk = rows[start : start + len(b.indices)]
            start += len(b.indices)
            groups.append(
                (chunk, bucket_batch(len(chunk), max_batch), bucket_length(max(map(len, chunk)), 256))
            )
    for chunk, batch, length in groups:
        ids, mask = pad_ids(chunk, batch, length, 0)
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def packed_feeds(rows: Sequence[Sequence[int]], *, max_batch: int = 32, budget: int = 1024) -> list[Feed]:
    """The inference inputs of the add-on's packed rows for ``rows`` (pooling is left out, as the
    other settings leave out the graph's own)."""
    planned = plan_packed([len(r) for r in rows], max_length=256, max_batch=max_batch, token_budget=budget)
    return [dict(packed_feed(b.rows, rows, b.batch, b.length, 0).inputs) for b in planned]


def compiled(model: Path | ov.Model, config: dict[str, Any]) -> ov.CompiledModel:
    """Compile ``model`` on CPU with ``config`` (no model cache: each setting compiles afresh),
    with the add-on's bound on per-shape executors (runtime.RUNTIME_CACHE_CAPACITY)."""
    src = model if isinstance(model, ov.Model) else str(model)
    base = {"INFERENCE_PRECISION_HINT": "f32", "CPU_RUNTIME_CACHE_CAPACITY": runtime.RUNTIME_CACHE_CAPACITY}
    return runtime.core().compile_model(src, "CPU", base | config)


def serial(model: ov.CompiledModel, batches: list[Feed]) -> Callable[[], None]:
    request = model.create_infer_request()

    def run() -> None:
        for feed in batches:
            request.infer(feed)

    return bench_api.on_inference_thread(run)


def parallel(model: ov.CompiledModel, batches: list[Feed]) -> Callable[[], None]:
    queue = ov.AsyncInferQueue(model, model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def run() -> None:
        for feed in batches:
            queue.start_async(feed)
        queue.wait_all()

    return bench_api.on_inference_thread(run)


def main() -> int:
    """Compile each setting, then time them interleaved; prints one line per setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    for line in bench_api.hardware():
        print(line, flush=True)
    cores = runtime.allowed_threads()
    cache = ModelCache(args.work / "data" / "models", offline=True)
    texts = pattern_texts(256, seed=3)
    beside = OtherWork()  # everything timed runs in this process
    for precision in ("int8", "fp32"):
        entry = cache.ensure(Role.EMBEDDING, str(minilm_model_dir()), precision, lambda *_: None)
        xml = entry.path / "openvino_model.xml"
        rows = token_rows(load_tokenizer(entry.path, 256), texts)
        sorted_feeds, arrival_feeds = feeds(rows, sort=True), feeds(rows, sort=False)
        one = feeds(rows[:1], sort=True)
        latency = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": cores}
        graph = packed_graph(runtime.core().read_model(xml))
        if graph is None:
            raise SystemExit(f"{xml} cannot be packed: the add-on runs it one text a row")
        packed = compiled(graph.model, latency)
        addon = f"LATENCY, {cores} threads, packed rows (the add-on)"
        settings = {
            f"LATENCY, {cores} threads, one text a row": compiled(xml, latency),
            "LATENCY, 1 thread": compiled(xml, {**latency, "INFERENCE_NUM_THREADS": 1}),
            f"LATENCY, {cores} threads, no pinning": compiled(xml, {**latency, "ENABLE_CPU_PINNING": False}),
            f"THROUGHPUT, {cores} streams": compiled(
                xml, {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": cores, "INFERENCE_NUM_THREADS": cores}
            ),
        }
        runs: dict[str, Callable[[], None]] = {addon: serial(packed, packed_feeds(rows))}
        for name, model in settings.items():
            run = parallel if name.startswith("THROUGHPUT") else serial
            runs[name] = run(model, sorted_feeds)
            runs[f"{name}, arrival order"] = run(model, arrival_feeds)
        best = dict.fromkeys(runs, float("inf"))
        for fn in runs.values():  # warm every shape
            fn()
        with beside.window():
            for _ in range(args.rounds):
                for name, fn in runs.items():
                    started = time.perf_counter()
                    fn()
                    best[name] = min(best[name], time.perf_counter() - started)
        single = {name: serial(model, one) for name, model in settings.items()}
        single[addon] = serial(packed, packed_feeds(rows[:1]))
        for fn in single.values():
            fn()
        median_ms = {}
        for name, fn in single.items():
            samples = []
            for _ in range(50):
                started = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - started)
            median_ms[name] = 1000 * statistics.median(samples)
        base = best[addon]
        mean_tokens = float(np.mean([len(r) for r in rows]))
        print(f"all-MiniLM-L6-v2 {precision}, {len(texts)} texts of {mean_tokens:.0f} tokens on average:")
        for name, seconds in best.items():
            one_ms = f"  one text {median_ms[name]:5.1f} ms" if name in median_ms else ""
            print(f"  {name:52s} {len(texts) / seconds:7.0f} texts/s  {base / seconds:4.2f}x{one_ms}")
    print(bench_api.other_work_line(beside))
    return 0


if __name__ == "__main__":
    sys.exit(main())
