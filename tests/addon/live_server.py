"""The real add-on server in its own process, with this suite's token and tiny models.

The process itself is :class:`homeiq_addon.launch.AddonProcess`, the launcher the demo and the
benchmarks use too; the reliability tests measure what a user's server would show.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from homeiq_addon.launch import AddonProcess

TOKEN = "reliability-token-5f1d2c3b4a69788796a5b4c3"


@dataclass
class LiveServer(AddonProcess):
    """One server process: ``LiveServer(flags, log_path)``, with the suite's token."""

    token: str | None = TOKEN


def tiny_model_args(models: dict[str, Path], data_dir: Path) -> list[str]:
    """Flags that serve the tiny FP32 models (the session fixture's converted cache)."""
    return [
        "--data-dir", str(data_dir), "--precision", "fp32", "--threads", "2",
        "--embedding-model", str(models["embedding"]),
        "--reranker-model", str(models["reranker"]),
        "--classifier-model", str(models["classifier"]),
    ]  # fmt: skip


def copy_cache(
    source: Path, dest: Path, roles: tuple[str, ...] = ("embedding", "reranker", "classifier")
) -> Path:
    """Copy the converted cache of ``roles`` into ``dest`` (a server may then damage it)."""
    for role in roles:
        shutil.copytree(source / "models" / role, dest / "models" / role)
    return dest
