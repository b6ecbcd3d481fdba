"""OpenVINO runtime helpers: one Core, compile settings, CPU allowance from the cgroup."""

from __future__ import annotations

import ctypes
import errno
import logging
import math
import mmap
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import openvino as ov

from homeiq_addon.settings import DEVICES

_LOGGER = logging.getLogger(__name__)
# madvise(2) advice (Linux >= 5.4): reclaim these pages now. Unlike MADV_DONTNEED it never
# discards data, so it stays safe even if a range was unmapped and reused since we read the maps.
MADV_PAGEOUT = getattr(mmap, "MADV_PAGEOUT", 21)
_CORE: ov.Core | None = None
_CORE_LOCK = threading.Lock()


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


def usable_cpus() -> frozenset[int]:
    """The CPUs this process may run on."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return frozenset(range(os.cpu_count() or 1))


def allowed_threads(requested: int | None = None) -> int:
    """Threads for one inference: the request, else the cgroup quota, else the usable cores."""
    if requested:
        return max(1, requested)
    cores = len(usable_cpus())
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def error_text(err: BaseException, limit: int = 200) -> str:
    """An OpenVINO error in one line: its message without the "Exception from src/...:224:"
    source locations it is wrapped in (each C++ layer adds one), at most ``limit`` characters."""
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [line for line in lines if line and not line.startswith("Exception from ")]
    return (" ".join(kept) or type(err).__name__)[:limit]


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


# How many per-shape executors the CPU plugin keeps for each compiled model (its default is
# 5,000). Each shape a model has run keeps its executors, and their buffers, until this many are
# held: measured on a 2-core AMX Xeon (static INT8 embedder and reranker, BF16 classifier), every
# shape the three models can be asked for took the add-on from 781 to 1,029 MB with the default,
# 949 MB with 500 (peak 1,039 -> 958 MB); after load and after a mixed workload nothing changed.
# Speed, interleaved in one process with both load orders: 256 texts embedded, 100 pairs reranked
# and 30 texts classified 1.02x, a mixed workload of 11 request sizes 1.00-1.01x; with 200 the
# mixed workload ran 0.95-1.02x; FP32 under oneDNN's AVX2 cap, 0.99-1.00x and 1.00-1.01x with 500.
# (Capping oneDNN's kernel cache as well halved the embedder's speed on a mixed workload:
# recompiling kernels is what costs.)
RUNTIME_CACHE_CAPACITY = 500


def compile_model(
    model: ov.Model | Path,
    *,
    device: str,
    threads: int,
    cache_dir: Path | None,
    inference_precision: str = "f32",
) -> ov.CompiledModel:
    """Compile for latency: one request at a time using all allowed threads, with a bounded
    cache of per-shape executors (RUNTIME_CACHE_CAPACITY).

    ``inference_precision`` is the CPU's precision for the parts a graph does not quantize:
    f32 by default (bf16 would shift FP32 results on CPUs with AMX, and OpenVINO infers in f16
    on ARM CPUs with half-precision arithmetic unless told otherwise); bf16 or f16 where
    ``precision: auto`` measured it and it passed the accuracy gate.
    """
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if device in ("CPU", "AUTO"):
        config["INFERENCE_NUM_THREADS"] = threads
    if device == "CPU":
        config["INFERENCE_PRECISION_HINT"] = inference_precision
        config["CPU_RUNTIME_CACHE_CAPACITY"] = RUNTIME_CACHE_CAPACITY
    if cache_dir is not None:
        if inference_precision != "f32":
            # OpenVINO's cache key leaves the precision hint out: a bf16 compile of an IR cached
            # for f32 loads the f32 blob under the bf16 config, and crashes at the first infer.
            cache_dir = cache_dir / inference_precision
        cache_dir.mkdir(parents=True, exist_ok=True)
        config["CACHE_DIR"] = str(cache_dir)
    src = model if isinstance(model, ov.Model) else str(model)
    return core().compile_model(src, device, config)


def resident_bytes(status: Path = Path("/proc/self/status")) -> int:
    """This process's resident set size (VmRSS) in bytes; 0 where /proc is not available."""
    try:
        with status.open(encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _read_only_file_mappings(roots: Iterable[Path], maps: Path) -> list[tuple[int, int]]:
    """(start, end) of this process's read-only, non-executable mappings of files under ``roots``."""
    prefixes = tuple(f"{os.path.realpath(r)}{os.sep}" for r in roots)
    found = []
    with maps.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            # address perms offset dev inode pathname (a path may hold spaces)
            fields = line.rstrip("\n").split(maxsplit=5)
            if len(fields) < 6 or fields[1][:1] != "r" or "w" in fields[1] or "x" in fields[1]:
                continue
            if not fields[5].startswith(prefixes):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            found.append((start, end))
    return found


def release_file_pages(roots: Iterable[Path], maps: Path = Path("/proc/self/maps")) -> int:
    """Drop this process's resident pages of the model files it maps read-only under ``roots``.

    The CPU plugin copies every weight into its own (repacked) memory at the first inference,
    yet keeps the IR or cache blob mapped, so the file's pages stay in the process's RSS
    although nothing reads them again: ≈260 MB for the three default models. Paging them out
    is safe: a page that is needed again is read back from the file (a read-only mapping has
    nothing to lose), which is what the kernel would do under memory pressure anyway.

    Returns the size of the mappings released, in bytes (0 off Linux, or on a kernel older than
    5.4, which lacks MADV_PAGEOUT).
    """
    if not sys.platform.startswith("linux"):
        return 0
    try:
        ranges = _read_only_file_mappings(roots, maps)
    except OSError:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    released = 0
    for start, end in ranges:
        if madvise(start, end - start, MADV_PAGEOUT) == 0:
            released += end - start
            continue
        err = ctypes.get_errno()
        _LOGGER.debug("Could not release a model file mapping: %s", os.strerror(err))
        if err == errno.EINVAL:  # the kernel has no MADV_PAGEOUT: no use trying the others
            break
    return released


def release_free_heap() -> bool:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Loading leaves much of the heap free but not returned: parsing XLM-R's 17 MB tokenizer.json
    alone leaves 23 MB of it, and OpenVINO's compile steps their own. glibc only returns the top
    of the heap by itself. Returns False where there is no glibc (nothing to do).
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
