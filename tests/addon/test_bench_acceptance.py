"""The benchmark's acceptance summary: each of issue 14's targets for the CPU's class, met or
MISSED, from the figures the benchmark measured."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from homeiq_addon.models.precision import CpuIdentity
from tests.addon.cpu_load import FixedShare

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_models

AMX = CpuIdentity("Intel Xeon", ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8"))
N100 = CpuIdentity("Intel N100", ("avx2", "avx_vnni"))
ZEN3 = CpuIdentity("AMD EPYC 7B13", ("avx2",))
SKYLAKE = CpuIdentity("Intel Xeon Skylake", ("avx2", "avx512f"))
ARM = CpuIdentity("Cortex-A76", ("asimd", "asimddp", "asimdhp"))


def results(served: float, rerank: float, classify: float, *, auto_share: float = 1.0) -> dict[str, Any]:
    return {
        "embed": {
            "auto": "int8",
            "served_float_speedup": served,
            "auto_vs_fastest": auto_share,
            "int8_min_cosine": 0.996,
            "served_float_min_cosine": 0.995,
        },
        "rerank": {
            "auto": "int8",
            "auto_speedup": rerank,
            "auto_vs_fastest": 1.0,
            "int8_spearman_vs_fp32": 0.99,
        },
        "classify": {
            "auto": "int8",
            "auto_speedup": classify,
            "auto_vs_fastest": 1.0,
            "int8_category_decisive_agreement": 1.0,
            "int8_priority_decisive_agreement": 0.94,
        },
    }


def verdicts(lines: list[str]) -> dict[str, str]:
    """What each line judges, and its verdict."""
    return {re.split(r"\s{2,}", line.strip())[0]: line.split()[-1] for line in lines[1:]}


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (AMX, "VNNI or AMX"),
        (N100, "VNNI or AMX"),
        (ZEN3, "AVX2, no VNNI"),
        (SKYLAKE, "AVX2, no VNNI"),
        (ARM, None),
    ],
)
def test_each_cpu_has_the_class_the_issue_names(cpu: CpuIdentity, expected: str | None) -> None:
    assert bench_models.cpu_class(cpu) == expected


def test_a_vnni_cpu_is_held_to_the_vnni_targets() -> None:
    lines = bench_models.acceptance(
        N100,
        results(3.05, 3.71, 3.11, auto_share=0.94),
        [
            {"rss_after_load_mb": 472.0, "peak_with_conversions_mb": 933},
            {"rss_after_load_mb": 450.0, "peak_with_conversions_mb": 1004},
        ],
    )

    assert lines[0].endswith("VNNI or AMX")
    assert verdicts(lines) == {
        "served /v1/embed, JSON vs PyTorch": "MISSED",  # 3.05 < 3.5
        "embed: auto of the fastest variant": "MISSED",  # 0.94 < 0.95
        "embed: min cosine": "met",
        "rerank, auto (int8) vs PyTorch": "met",
        "rerank: auto of the fastest variant": "met",
        "rerank: Spearman": "met",
        "classify, auto (int8) vs PyTorch": "met",
        "classify: auto of the fastest variant": "met",
        "classify: label agreement": "MISSED",  # the priority's 0.94 < 0.95
        "default image: after load": "met",
        "default image: peak": "MISSED",  # the larger start counts: 1,004 > 1,000 MB
    }


def test_an_avx2_cpu_is_held_to_the_avx2_targets_and_arm_to_none() -> None:
    avx2 = verdicts(bench_models.acceptance(ZEN3, results(1.64, 1.62, 1.45), []))
    assert (avx2["served /v1/embed, JSON vs PyTorch"], avx2["classify, auto (int8) vs PyTorch"]) == (
        "met",
        "MISSED",
    )
    assert not any(what.startswith("default image") for what in avx2)  # not measured: not judged

    arm = bench_models.acceptance(ARM, results(0.9, 0.8, 0.7), [])
    assert "none set for NEON, dotprod, FP16" in arm[0]
    assert not any("vs PyTorch" in line for line in arm)  # no speed target; accuracy still judged
    assert "embed: min cosine" in verdicts(arm)


def test_the_benchmarks_say_whether_the_machine_was_quiet() -> None:
    assert bench_models.bench_api.other_work_line(FixedShare(0.02)) == (
        "other work beside the timings: 2% of the CPU (a quiet machine)"
    )
    assert bench_models.bench_api.other_work_line(FixedShare(0.4)) == (
        "other work beside the timings: 40% of the CPU (NOT a quiet machine: measure again)"
    )
    assert "not known" in bench_models.bench_api.other_work_line(FixedShare(None))
