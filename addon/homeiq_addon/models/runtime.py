"""OpenVINO runtime helpers: one Core, compile settings, CPU allowance from the cgroup."""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

import openvino as ov

_LOGGER = logging.getLogger(__name__)
_CORE: ov.Core | None = None
_CORE_LOCK = threading.Lock()
DEVICES = ("CPU", "GPU", "NPU", "AUTO")


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """Return the CPU quota of this process's cgroup in cores, or None when unlimited.

    OpenVINO counts the host's cores, which over-subscribes a container limited by a quota.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000"
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 else None
    except (OSError, ValueError):
        return None


def allowed_threads(requested: int | None = None) -> int:
    """Threads for one inference: the request, else the cgroup quota, else the usable cores."""
    if requested:
        return max(1, requested)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def core() -> ov.Core:
    """The process-wide OpenVINO Core (creating one per model wastes memory)."""
    global _CORE  # noqa: PLW0603 - a lazily created process singleton
    with _CORE_LOCK:
        if _CORE is None:
            _CORE = ov.Core()
        return _CORE


def pick_device(device: str) -> str:
    """Return the device to compile on; fall back to CPU with a log line when it is missing."""
    wanted = device.upper()
    if wanted not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if wanted in ("CPU", "AUTO"):
        return wanted
    available = core().available_devices
    if any(d.startswith(wanted) for d in available):
        return wanted
    _LOGGER.warning(
        "Device %s is not available here (found %s); running on CPU instead", wanted, ", ".join(available)
    )
    return "CPU"


def compile_model(
    model: ov.Model | Path, *, device: str, threads: int, cache_dir: Path | None
) -> ov.CompiledModel:
    """Compile for latency: one request at a time using all allowed threads."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if device in ("CPU", "AUTO"):
        config["INFERENCE_NUM_THREADS"] = threads
    if device == "CPU":
        # Keep f32 for the non-quantized parts: bf16 would shift FP32 results on CPUs with AMX.
        config["INFERENCE_PRECISION_HINT"] = "f32"
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        config["CACHE_DIR"] = str(cache_dir)
    src = model if isinstance(model, ov.Model) else str(model)
    return core().compile_model(src, device, config)
