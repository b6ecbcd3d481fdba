"""Load: 50 concurrent clients for 10 s against the real server process (tiny models, loopback).

Asserts correctness only (no errors except 503 + Retry-After) and the memory bound (RSS after
warm-up grows < 10 %); latency is printed, never asserted. ``scripts/soak.py`` runs the same
load for longer and with real weights.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from scripts.soak import run_load
from tests.addon.live_server import LiveServer, copy_cache, tiny_model_args

ROLES = ["embedding", "reranker", "classifier"]


def test_fifty_concurrent_clients_get_correct_answers_and_memory_stays_flat(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    data = copy_cache(fp32_data_dir, tmp_path / "data")
    with LiveServer(tiny_model_args(tiny_models, data), tmp_path / "server.log") as server:
        server.wait_healthy()
        models = server.load(ROLES)
        assert all(models[r]["state"] == "ready" for r in ROLES), models
        report = asyncio.run(
            run_load(
                f"http://127.0.0.1:{server.port}",
                server.token,
                clients=50,
                seconds=10,
                warmup_s=3,
                pid=server.pid,
            )
        )
        print("\n" + report.summary())
        assert report.errors == [], report.summary()
        assert {"/v1/embed", "/v1/rerank", "/v1/classify", "/v1/suggest", "/health", "/v1/models"} <= set(
            report.requests
        )
        assert report.total >= 100, report.summary()
        growth = report.rss_growth
        assert growth is not None and growth < 0.10, report.summary()
        # Still answering normally afterwards, and nothing unexpected in its log.
        status, body, _ = server.request("POST", "/v1/classify", {"texts": ["Lock the door at night"]})
        assert status == 200 and len(body["results"]) == 1
        log = server.log()
    assert "Unexpected error" not in log and "Traceback" not in log, log[-3000:]
