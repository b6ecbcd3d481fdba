"""The ``full`` profile end to end: tiny locally built models for all three roles (real
architectures, random weights) go through the add-on's conversion path (optimum-intel export and
INT8 quantization in a child process), then serve the real HTTP API, and a real Home Assistant
with the integration analyses a demo home against it."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
from pathlib import Path
from typing import Any

from demo.flow import Progress, analyze, get_suggestions, start_stack
from demo.harness import ADDON_PYTHON
from homeiq_addon.launch import ROOT

ROLES = ("embedding", "reranker", "classifier")


def _build_tiny_models(out: Path) -> dict[str, str]:
    """Build the tiny HF model folders with the add-on's environment (it has torch)."""
    subprocess.run(
        [str(ADDON_PYTHON), "-m", "tests.tiny_models", str(out)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'addon'}:{ROOT}"},
        capture_output=True,
    )
    return {role: str(out / role) for role in ROLES}


async def _scenario(workdir: Path, models: dict[str, str]) -> None:
    stack = await start_stack(
        workdir, Progress(io.StringIO()), seed=11, addon_profile="full", addon_models=models
    )
    try:
        addon = stack.addon
        status, info = await addon.request("GET", "/v1/models")
        assert status == 200
        for role in ROLES:
            entry = info["models"][role]
            assert entry["state"] == "ready", entry
            assert entry["source"] == "local"
            # precision: auto measured the candidates on this CPU and says which it serves, and why.
            assert entry["precision"] in ("int8", "int8-weights", "fp32", "bf16"), entry
            assert "serving" in (entry["precision_reason"] or ""), entry

        status, body = await addon.request("POST", "/v1/embed", {"texts": ["Hall light on at 7", "x"]})
        assert status == 200 and len(body["embeddings"]) == 2

        docs = ["Porch light turns on at sunset", "Coffee maker on at 07:00", "Lock the door at night"]
        status, body = await addon.request("POST", "/v1/rerank", {"query": "security", "documents": docs})
        assert status == 200
        assert sorted(r["index"] for r in body["results"]) == [0, 1, 2]
        scores = [r["score"] for r in body["results"]]
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)

        status, body = await addon.request("POST", "/v1/classify", {"texts": docs})
        assert status == 200 and len(body["results"]) == 3
        categories = ("energy", "security", "comfort", "convenience")
        for result in body["results"]:
            assert abs(sum(result["scores"][label] for label in categories) - 1.0) < 1e-3, result
            assert abs(sum(result["scores"][label] for label in ("high", "medium", "low")) - 1.0) < 1e-3

        patterns = [{"id": f"p{i}", "text": text} for i, text in enumerate(docs)]
        status, body = await addon.request("POST", "/v1/suggest", {"patterns": patterns, "top_k": 3})
        assert status == 200
        assert body["profile"] == "full"
        served: dict[str, Any] = body["models"]
        assert set(served) >= {"embedding", "reranker", "classifier"}

        # The integration, unchanged, works against the full profile too. Random tiny embeddings
        # make most texts look alike, so many candidates come back as near-duplicates: what the
        # add-on kept must be exactly what the integration stores, each ranked and classified.
        summary = await analyze(stack)
        assert summary["profile"] == "full"
        assert set(summary["models"]) >= {"embedding", "reranker", "classifier"}
        assert summary["candidates"] > 0
        suggestions = await get_suggestions(stack, status=["new"])
        assert len(suggestions) == summary["open"] == summary["new"]
        assert summary["new"] + summary["duplicates"] == summary["candidates"]
        for suggestion in suggestions:
            assert suggestion["category"] in {"energy", "security", "comfort", "convenience"}
            assert suggestion["priority"] in {"high", "medium", "low"}
    finally:
        stack.stop()


def test_full_profile_with_converted_tiny_models(tmp_path: Path) -> None:
    models = _build_tiny_models(tmp_path / "tiny-models")
    asyncio.run(_scenario(tmp_path / "stack", models))
