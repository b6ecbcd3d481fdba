"""``precision: auto``: measure which precision is fastest on this CPU, once, and remember it.

Static INT8 pays off only where the CPU has VNNI or AMX: on an AVX2-only core (older Intel
NUCs, AMD before Zen 4) OpenVINO's FP32 graph was 1.2x faster than the static INT8 one. So
at a role's first load, and again after a change of CPU or of its thread allowance, each
candidate IR is compiled and timed on a short probe of representative inputs, checked against
FP32 with the role's accuracy gate, and the fastest one that passes is served, or one with
smaller weights close to it: within AS_FAST (2 %) of its speed, or within MEMORY_SLACK (10 %)
where that holds at least MEMORY_SAVING (100 MB) less (a probe's ranking of close candidates is
not stable, and a home server's memory is worth more than a few percent of speed, but not
whatever it costs). The decision is kept with the CPU's identity and thread count in
``<models>/precision-choices.json``; a later start reads it and probes nothing.

Candidates: static INT8 (weights and activations), weight-only INT8, FP32, and FP32 IR run
with bf16 inference precision where the CPU computes bf16 natively (AMX, AVX512_BF16/FP16), or
with fp16 inference precision on an ARM CPU with half-precision arithmetic (``asimdhp``: the
Cortex-A55 of a Home Assistant Green, a Raspberry Pi 5's A76; OpenVINO's own default there,
which the add-on's explicit f32 would otherwise forgo).
The classifier's static INT8 quantizes its encoder and compresses its decoder's weights (convert.py).
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .other_work import OtherWork
from .runtime import error_text
from .types import Role

_LOGGER = logging.getLogger(__name__)
CHOICES_FILE = "precision-choices.json"
# ISA features that decide which precision is fast (x86 names as in /proc/cpuinfo; ARM's
# "asimddp" is the dot-product extension).
ISA_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
    "asimd",
    "asimddp",
    "asimdhp",
)
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "avx512_fp16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # 8-bit products summed in 32 bits
FP16_FLAGS = ("asimdhp",)  # ARM's half-precision arithmetic (FEAT_FP16)
# oneDNN's ISA cap (``ONEDNN_MAX_CPU_ISA``), which OpenVINO's CPU plugin obeys. Capped to AVX2 on
# an AMX Xeon, static INT8 MiniLM ran at 300 texts/s instead of 2,130: the probe must see the cap,
# and the stored choice must not outlive it. Each level allows what the one before it does, plus:
_ISA_LADDER = (
    ("SSE41", ()),
    ("AVX", ()),
    ("AVX2", ("avx2",)),
    ("AVX512_CORE", ("avx512f",)),
    ("AVX512_CORE_VNNI", ("avx512_vnni", "avx_vnni")),
    ("AVX512_CORE_BF16", ("avx512_bf16",)),
    ("AVX512_CORE_FP16", ("avx512_fp16",)),
    ("AVX512_CORE_AMX", ("amx_bf16", "amx_int8")),
)


def _isa_caps() -> dict[str, tuple[str, ...]]:
    """The flags each ``ONEDNN_MAX_CPU_ISA`` level lets OpenVINO use."""
    caps: dict[str, tuple[str, ...]] = {}
    allowed: tuple[str, ...] = ()
    for level, added in _ISA_LADDER:
        allowed = (*allowed, *added)
        caps[level] = allowed
    avx2_vnni = (*caps["AVX2"], "avx_vnni")  # a side branch: VNNI without AVX-512
    return caps | {
        "AVX2_VNNI": avx2_vnni,
        "AVX2_VNNI_2": avx2_vnni,
        "AVX10_1_512": caps["AVX512_CORE_FP16"],
        "AVX10_1_512_AMX": caps["AVX512_CORE_AMX"],
    }


ISA_CAPS = _isa_caps()
PROBE_ROUNDS = 5
# A candidate CLEARLY_SLOWER than the anchor it is timed against after PROBE_MIN_ROUNDS rounds is
# not timed further: it cannot be served (the fastest is at most the anchor's time, and a slower
# candidate is served only within MEMORY_SLACK of it), and more rounds only lower its best time
# by the noise of a disturbed round (a margin of 18 % over MEMORY_SLACK; four probes of one
# candidate on an idle Zen 1 EPYC gave 0.94-1.05x FP32). On a 2-core AMX Xeon the reranker's probe
# took 14 s, 6.5 of them timing FP32 (5.4x slower than static INT8) and weight-only INT8 (2x) for
# five rounds each.
PROBE_MIN_ROUNDS = 2
CLEARLY_SLOWER = 1.3
# Each timed sample repeats the probe inputs for at least this long: a single run of a fast
# candidate (tens of ms) is at the mercy of the scheduler on a busy 2-core host.
PROBE_SAMPLE_S = 0.2
# Other work on the CPU skews the ranking: a probe whose timing shared more than this of the
# usable CPUs' time with other work (other_work.py) is repeated at the next starts, at most
# MAX_BUSY_PROBES times in all. On a 2-core AMX Xeon, with a process spinning part of each 10 ms
# beside the embedder's probe: at 15-20 % the candidates' ratios to FP32 moved by 5-8 %, alike;
# at 29 % static INT8 came out 14 % ahead of BF16 (within 5 % when idle); at 37-38 % weight-only
# INT8 fell to 0.72-0.79x FP32 and BF16 ranged over 1.7-4.9x.
BUSY_SHARE = 0.25
MAX_BUSY_PROBES = 3
# Bumped when what a decision says changes: one stored by an older version is measured again.
# 2: failed candidates' errors in one line (before, "could not be used (Exception from src/...")
# cut the message off in /v1/models and the log, for as long as the decision was kept).
# 3: the embedder runs texts packed into rows (packing.py), 1.1-1.3x faster by precision: its
# candidates are ranked again, and the other roles' once with them.
# 4: the classifier's gate counts each decisive label (label_agreement): one near-tie flipped
# among the probe's 12 texts failed BF16 before, and served FP32 at a third of its speed.
# 5: the reranker runs pairs packed into rows (packing.py): its candidates are ranked again.
# 6: of the candidates within 3 % of the fastest, the one with the smallest weights is served.
# 7: the classifier's decoder reads the encoder states directly (cross_attention.py), 1.2x
# faster by precision, more so for FP32 than for weight-only INT8; and smaller weights are served
# within 10 % of the fastest instead of 3 %: every role is ranked again.
# 8: the weights each candidate holds are measured (Measurement.weight_mb): smaller weights are
# served within 5 % of the fastest, or within 10 % where they save 100 MB or more.
# 9: the classifier's BF16 runs its graphs with FP16 weights (48 MB less held): measured again.
# 10: the default image makes weight-only INT8 itself (weight_int8.py), where it could not before.
# 11: static INT8 is made with OpenVINO alone (static_int8.py), in the default image too.
# 12: the classifier has a static INT8 candidate (its encoder; it was weight-only INT8 as "int8").
# 13: a choice holds for the thread allowance it was measured with (CpuIdentity.threads), and
# smaller weights are served within AS_FAST 2 % of the fastest instead of 5 %.
# 14: static INT8's weights take 7 bits on x86 CPUs without VNNI (static_int8.weight_steps), where
# 8-bit ones saturated: measured again there. Elsewhere nothing changed, and a format 13
# decision stands (SATURATION_FREE_FORMAT): no probe at the upgrade.
DECISION_FORMAT = 14
SATURATION_FREE_FORMAT = 13
# How much slower than the fastest candidate one with smaller weights may be and still be served:
# AS_FAST for any smaller weights, MEMORY_SLACK where they are MEMORY_SAVING smaller or more.
# On a Zen 1 EPYC (AVX2) the reranker's static INT8 came out 0.94x, 0.99x, 1.03x and 1.05x FP32
# in four probes, and the classifier's weight-only INT8 0.94x FP32 in its probe and in the
# benchmark; FP32 everywhere held 820 MB after load and peaked at 1,282 MB there, against 475 and
# 938 MB with static INT8 for the reranker and weight-only INT8 for the classifier (whose FP32
# weights hold 220 MB more by held_weight_bytes, 106 MB more measured alone). MiniLM's weight-only
# INT8 (0.92x FP32 there) would save 28 MB (67 MB by the count): not worth 8 % of its speed.
# AS_FAST was 5 % (the bound for auto against the fastest variant) until it let the probe
# serve what the benchmark then measured 0.94-0.97 of the fastest: on one core of an AMX Xeon the
# probe timed BF16 MiniLM 3 % faster than static INT8 on its 64 texts and served static INT8 for
# 58 MB of weights instead of 90, where 256 texts ran 5-7 % faster in BF16. Nor did the smaller
# weights hold less: through every shape, static INT8 MiniLM grew by 125 MB and BF16 by 46 (the
# same 140 MB after load). Within 2 % smaller weights still break a tie, which the probe's own
# noise decides anyway (static INT8 over BF16 MiniLM on two AMX cores: 0.93-0.98 in four probes).
AS_FAST = 0.02
MEMORY_SLACK = 0.10
MEMORY_SAVING = 100e6  # bytes, as graph_weights.held_weight_bytes counts them


@dataclass(frozen=True, slots=True)
class CpuIdentity:
    """What the precision choice depends on: the CPU's model name, its ISA features, and the
    threads one inference runs on (the add-on's allowance: ``runtime.allowed_threads``).

    Threads matter: on one core of a 2-core AMX Xeon BF16 MiniLM embedded 256 texts 1.03-1.07x as
    fast as static INT8 (three runs), on both cores 0.99x; and OpenVINO 2026.4 fuses T5's gated
    feed-forward layers under BF16 on AMX (its LLMMLP node), which dies of a division by zero
    (SIGFPE) when compiled for one thread: a BF16 choice made with two threads would crash the
    add-on at every start after the allowance fell to one. The probe leaves such a candidate out.
    """

    model: str
    flags: tuple[str, ...]
    threads: int = 1

    @property
    def key(self) -> str:
        """A stable string for the cache: a different CPU (or VM CPU model), or the same CPU with
        another thread allowance, gives another key."""
        return f"{self.model} | {' '.join(self.flags)} | {self.threads} threads"

    @property
    def threads_text(self) -> str:
        """The thread allowance in words: "1 thread", "2 threads"."""
        return f"{self.threads} thread{'s' if self.threads != 1 else ''}"

    @property
    def has_native_bf16(self) -> bool:
        """True where OpenVINO computes bf16 in hardware (AMX or AVX512_BF16/FP16)."""
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def has_native_fp16(self) -> bool:
        """True on an ARM CPU that computes fp16 in hardware (where OpenVINO's CPU plugin infers in
        fp16 unless told otherwise)."""
        return any(flag in self.flags for flag in FP16_FLAGS)

    @property
    def is_arm(self) -> bool:
        """True on an ARM CPU (its NEON flag, or this machine's architecture)."""
        return "asimd" in self.flags or platform.machine().lower() in ("aarch64", "arm64")

    @property
    def int8_pairs_saturate(self) -> bool:
        """True on an x86 CPU without VNNI (AVX2, or AVX-512 alone): OpenVINO's INT8 kernels
        there multiply 8-bit activations by 8-bit weights with ``vpmaddubsw``, which adds each
        pair of products in 16 bits and saturates (2 x 255 x 127 > 32,767). VNNI and AMX add
        them in 32 bits, ARM's kernels widen them."""
        return not self.is_arm and not any(flag in self.flags for flag in VNNI_FLAGS)

    def describe(self) -> str:
        """The features that matter, in words: "AVX2, no VNNI", "AVX-512 VNNI, AMX", "NEON, dotprod,
        FP16"."""
        has = set(self.flags)
        if self.is_arm:
            words = ["NEON", "dotprod" if "asimddp" in has else "no dotprod"]
            if self.has_native_fp16:
                words.append("FP16")
            return ", ".join(words)
        words = []
        if "avx512_vnni" in has:
            words.append("AVX-512 VNNI")
        elif "avx_vnni" in has:
            words.append("AVX-VNNI")
        elif "avx512f" in has:
            words.extend(["AVX-512", "no VNNI"])
        elif "avx2" in has:
            words.extend(["AVX2", "no VNNI"])
        else:
            words.append("no AVX2")
        if any(f.startswith("amx") for f in has):
            words.append("AMX")
        elif "avx512_bf16" in has:
            words.append("AVX512_BF16")
        return ", ".join(words)


def cpu_identity(cpuinfo: Path = Path("/proc/cpuinfo"), *, threads: int = 1) -> CpuIdentity:
    """This machine's CPU model name and its ISA features (from /proc/cpuinfo on Linux), less those
    an ``ONEDNN_MAX_CPU_ISA`` cap keeps OpenVINO from using (the model name then says so, which
    also gives the capped CPU a choice of its own), with ``threads`` per inference."""
    model = platform.processor() or platform.machine() or "unknown CPU"
    flags: set[str] = set()
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name in ("model name", "hardware", "cpu model") and value.strip():
                model = value.strip()
            elif name in ("flags", "features"):
                flags.update(value.split())
    except OSError:
        pass
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap in ISA_CAPS:
        flags &= set(ISA_CAPS[cap])
        model = f"{model} (ISA capped to {cap})"
    return CpuIdentity(model=model, flags=tuple(f for f in ISA_FLAGS if f in flags), threads=threads)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to serve a role: which cache entry (IR precision) and which inference precision."""

    name: str  # what /v1/models reports: int8, int8-weights, fp32, bf16, fp16
    ir: str  # the cache entry's precision (convert.py's --precision): int8, int8w, fp32, fp16
    inference: str = "f32"  # OpenVINO's INFERENCE_PRECISION_HINT on CPU
    label: str = ""  # in words, for the log

    def __str__(self) -> str:
        return self.label or self.name


STATIC_INT8 = Candidate("int8", "int8", label="static INT8")
WEIGHT_INT8 = Candidate("int8-weights", "int8w", label="weight-only INT8")
FP32 = Candidate("fp32", "fp32", label="FP32")
# The cache entry BF16 and FP16 inference run on: the FP32 one, but for the classifier, whose graphs
# with FP16 weights hold 48 MB less than FP32 ones under BF16 (convert.py, fp16).
HALF_PRECISION_IR = {Role.CLASSIFIER: "fp16"}


def _role_candidates(role: Role) -> dict[str, Candidate]:
    """Every way to serve ``role``, by the name a stored decision gives."""
    half = HALF_PRECISION_IR.get(role, FP32.ir)
    bf16 = Candidate("bf16", half, inference="bf16", label="BF16")
    fp16 = Candidate("fp16", half, inference="f16", label="FP16")
    return {c.name: c for c in (STATIC_INT8, WEIGHT_INT8, FP32, bf16, fp16)}


ROLE_CANDIDATES = {role: _role_candidates(role) for role in Role}


def candidates(role: Role, cpu: CpuIdentity) -> list[Candidate]:
    """What the probe tries for ``role`` on ``cpu``; FP32 (the reference) is always one."""
    table = ROLE_CANDIDATES[role]
    found = [STATIC_INT8, WEIGHT_INT8, FP32]
    if cpu.has_native_bf16:
        found.append(table["bf16"])
    if cpu.has_native_fp16:
        found.append(table["fp16"])
    return found


def candidate_for(role: Role, name: str) -> Candidate:
    """The candidate a stored decision names."""
    return ROLE_CANDIDATES[role][name]


# ---- accuracy gates against FP32 ----------------------------------------------------------------
def min_cosine(reference: Any, outputs: Any) -> float:
    """The smallest cosine similarity between matching rows of two embedding matrices."""
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(outputs, dtype=np.float64)
    dots = (ref * out).sum(axis=1)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    return float(np.min(dots / np.maximum(norms, 1e-12)))


def spearman(reference: Any, outputs: Any) -> float:
    """Spearman's rank correlation of two score vectors (1.0 for identical orders)."""
    a = np.argsort(np.argsort(np.asarray(reference, dtype=np.float64)))
    b = np.argsort(np.argsort(np.asarray(outputs, dtype=np.float64)))
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


# FP32's top label must lead the next by this much for its answer to count in label_agreement.
DECISIVE_MARGIN = 0.05
Scores = Mapping[str, float]  # one head's probability per label


def label_agreement(reference: Sequence[Sequence[Scores]], outputs: Sequence[Sequence[Scores]]) -> float:
    """The share of FP32's decisive answers that the candidate gives too: each text's category and
    priority count apart, and only where FP32's top label leads the next by DECISIVE_MARGIN (a
    nearer tie is a coin toss in any precision: the model itself is undecided there). 1.0 when
    FP32 decides nothing."""
    agreed = counted = 0
    for ref_heads, out_heads in zip(reference, outputs, strict=True):
        for ref, out in zip(ref_heads, out_heads, strict=True):
            top, second = [*sorted(ref.values(), reverse=True), 0.0, 0.0][:2]
            if top - second < DECISIVE_MARGIN:
                continue
            counted += 1
            agreed += max(ref, key=ref.__getitem__) == max(out, key=out.__getitem__)
    return agreed / counted if counted else 1.0


@dataclass(frozen=True, slots=True)
class Gate:
    """How a candidate's answers must agree with FP32's on the probe inputs."""

    metric: str
    threshold: float
    measure: Callable[[Any, Any], float]


GATES: dict[Role, Gate] = {
    Role.EMBEDDING: Gate("min cosine", 0.98, min_cosine),
    Role.RERANKER: Gate("Spearman", 0.95, spearman),
    Role.CLASSIFIER: Gate("label agreement", 0.95, label_agreement),
}


# ---- the probe ----------------------------------------------------------------------------------
class Probe(Protocol):
    """Loads a candidate and runs the role's representative inputs through it."""

    def load(self, candidate: Candidate) -> Any:
        """A ready model of ``candidate`` (converting its IR if needed)."""

    def run(self, model: Any) -> Any:
        """The model's answers to the probe inputs (embeddings, scores or labels)."""

    def weight_bytes(self, model: Any) -> int:
        """How much memory the model's weights hold (graph_weights.held_weight_bytes)."""

    def settle(self) -> None:
        """Give back what loading left behind and what the models dropped since held."""


class ProbeProcess(abc.ABC):
    """A probe that runs :func:`decide` elsewhere (a process of its own: probe_process.py)."""

    @abc.abstractmethod
    def decide(self, role: Role, model_id: str, cpu: CpuIdentity, tried: list[Candidate]) -> Decision:
        """The decision measured there."""


@dataclass(slots=True)
class Measurement:
    """One candidate's result: best probe time, agreement with FP32, whether it passed, and
    the memory its weights hold."""

    name: str
    seconds: float | None = None
    weight_mb: float | None = None
    agreement: float | None = None
    passed: bool = False
    error: str | None = None


@dataclass(slots=True)
class Decision:
    """Which precision a role serves on a CPU, and why (kept in the choices file)."""

    role: str
    model_id: str
    cpu: str  # CpuIdentity.key
    cpu_description: str
    chosen: str  # a candidate name
    reason: str
    measurements: list[Measurement] = field(default_factory=list)
    decided_at: float = 0.0
    # The share of the usable CPUs' time other work took while the candidates were timed (None:
    # not known); above BUSY_SHARE the decision is busy: measured again at the next start.
    other_work: float | None = None
    busy: bool = False
    probes: int = 1  # how many probes this decision took (busy ones are repeated)
    format: int = DECISION_FORMAT

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        """Read a stored decision back (ValueError/KeyError/TypeError when malformed)."""
        measured = [Measurement(**m) for m in data.get("measurements", [])]
        return cls(
            role=str(data["role"]),
            model_id=str(data["model_id"]),
            cpu=str(data["cpu"]),
            cpu_description=str(data["cpu_description"]),
            chosen=str(data["chosen"]),
            reason=str(data["reason"]),
            measurements=measured,
            decided_at=float(data.get("decided_at", 0.0)),
            other_work=None if data.get("other_work") is None else float(data["other_work"]),
            busy=bool(data.get("busy", False)),
            probes=int(data.get("probes", 1)),
            format=int(data.get("format", 1)),
        )


def decide(
    role: Role,
    model_id: str,
    cpu: CpuIdentity,
    tried: Sequence[Candidate],
    probe: Probe | ProbeProcess,
    *,
    clock: Callable[[], float] = time.perf_counter,
    rounds: int = PROBE_ROUNDS,
    sample_s: float = PROBE_SAMPLE_S,
    left_out: Mapping[str, str] | None = None,
    other_work: OtherWork | None = None,
) -> Decision:
    """Time every candidate on the probe inputs, check it against FP32, and choose the fastest
    that passes the role's gate, or the one with the smallest weights among those close to it
    (:func:`_served`).

    At most two candidates are held at a time, so that the probe's memory stays near the served
    models': FP32 is loaded first (its answers are the reference), then the first other candidate
    that loads becomes the anchor, kept to the end; FP32 and each later candidate are timed
    against it, rounds interleaved (best of ``rounds``, each a mean over at least ``sample_s``;
    of PROBE_MIN_ROUNDS for one CLEARLY_SLOWER than the anchor), and dropped. A candidate's time
    is its ratio to the anchor in its own rounds times the anchor's best. (Holding all four of
    XLM-R's candidates at once peaked at 1.96 GB.)

    A candidate that cannot be built or run is left out (with its error), as are those named in
    ``left_out`` (with why); FP32 must work. A :class:`ProbeProcess` decides where it runs.
    What share of the CPU other work took while the candidates were timed is measured by
    ``other_work`` (default: the kernel's counters, other_work.py) and kept in the decision.
    """
    if isinstance(probe, ProbeProcess):
        return probe.decide(role, model_id, cpu, list(tried))
    left_out = left_out or {}
    meter = other_work or OtherWork()
    if FP32.name in left_out:
        raise RuntimeError(f"FP32 cannot be tried: {left_out[FP32.name]}")
    gate = GATES[role]
    answers: dict[str, Any] = {}
    results = {c.name: Measurement(c.name) for c in tried}
    ratios: dict[str, float] = {}
    anchor: tuple[str, Any] | None = None
    anchor_best = math.inf
    reference: tuple[str, Any] | None = None  # FP32, held until there is an anchor to time it against

    def timed(against: Any, name: str, model: Any) -> None:
        nonlocal anchor_best
        best = _interleaved(probe, [against, model], clock, rounds, sample_s, meter=meter)
        anchor_best = min(anchor_best, best[0])
        ratios[name] = best[1] / best[0]

    for cand in sorted(tried, key=lambda c: c.name != FP32.name):  # FP32 first, then in order
        if cand.name in left_out:
            results[cand.name].error = left_out[cand.name]
            continue
        model = _loaded(probe, cand, role, results[cand.name], answers)
        if model is None:
            continue
        if cand.name == FP32.name:
            reference = (cand.name, model)
        elif anchor is None:
            anchor = (cand.name, model)
            if reference is not None:
                timed(model, *reference)
                reference = None
        else:
            timed(anchor[1], cand.name, model)
        model = None
        probe.settle()  # a candidate timed is dropped here
    if anchor is None and reference is not None:  # only FP32 runs here
        anchor, reference = reference, None
        anchor_best = _interleaved(probe, [anchor[1]], clock, rounds, sample_s, meter=meter)[0]
    if anchor is not None:
        ratios[anchor[0]] = 1.0
    anchor = None
    probe.settle()
    for name, ratio in ratios.items():
        _score(results[name], ratio * anchor_best, gate, answers)
    by_name = {c.name: c for c in tried}
    passing = [results[c.name] for c in tried if results[c.name].passed]
    fastest = min(passing, key=_seconds)
    chosen = _served(passing, fastest)
    return Decision(
        role=role.value,
        model_id=model_id,
        cpu=cpu.key,
        cpu_description=cpu.describe(),
        chosen=chosen.name,
        reason=_reason(cpu, gate, [results[c.name] for c in tried], by_name, chosen=chosen, fastest=fastest),
        measurements=[results[c.name] for c in tried],
        decided_at=time.time(),
        other_work=share if (share := meter.share()) is None else round(share, 3),
    )


def _score(m: Measurement, seconds: float, gate: Gate, answers: Mapping[str, Any]) -> None:
    """Fill in ``m``'s time, its agreement with FP32's ``answers`` and whether it passed."""
    m.seconds = seconds
    m.agreement = 1.0 if m.name == FP32.name else round(gate.measure(answers[FP32.name], answers[m.name]), 4)
    m.passed = m.name == FP32.name or m.agreement >= gate.threshold


def _loaded(
    probe: Probe, cand: Candidate, role: Role, result: Measurement, answers: dict[str, Any]
) -> Any | None:
    """``cand``'s model, its first answers kept in ``answers`` and its weights in ``result``
    (settled: loading's leftovers given back); None, with the error noted, when it cannot be
    built or run (FP32 must work: its error is raised)."""
    try:
        model = probe.load(cand)
        # The first run also warms the shapes; its answers are what the gate checks.
        answers[cand.name] = probe.run(model)
        if not _finite(answers[cand.name]):  # fp16 overflows to infinity; no gate would see it
            raise ValueError("its answers hold NaN or infinity")
    except Exception as err:  # a candidate that fails to convert, compile or run is not served
        if cand.name == FP32.name:
            raise
        result.error = error_text(err)
        _LOGGER.warning("Could not try %s for the %s model: %s", cand, role.value, error_text(err, 1000))
        probe.settle()
        return None
    try:
        result.weight_mb = round(probe.weight_bytes(model) / 1e6, 1)
    except Exception as err:  # unknown weights only forgo the memory allowance (_served)
        _LOGGER.warning(
            "Could not count the weights of %s for the %s model: %s", cand, role.value, error_text(err, 1000)
        )
    probe.settle()
    return model


def _finite(answers: Any) -> bool:
    """Whether every number in ``answers`` is finite: an array, scores, or each text's label
    probabilities per question (a sequence of mappings)."""
    if isinstance(answers, Mapping):
        return _finite(list(answers.values()))
    if isinstance(answers, (list, tuple)) and any(isinstance(a, (Mapping, list, tuple)) for a in answers):
        return all(_finite(a) for a in answers)
    return bool(np.all(np.isfinite(np.asarray(answers, dtype=np.float64))))


def _interleaved(
    probe: Probe,
    models: Sequence[Any],
    clock: Callable[[], float],
    rounds: int,
    sample_s: float,
    *,
    meter: OtherWork,
) -> list[float]:
    """Each model's best mean seconds per run over ``rounds``, the models taking turns (a busy
    moment hits every one alike); after PROBE_MIN_ROUNDS, a second model CLEARLY_SLOWER than the
    first (the anchor) ends the timing, as does a model timed alone (nothing to rank it against).
    ``meter`` counts what other work did meanwhile."""
    best = [math.inf] * len(models)
    with meter.window():
        for done in range(1, rounds + 1):
            for i, model in enumerate(models):
                runs, started = 0, clock()
                while runs == 0 or clock() - started < sample_s:
                    probe.run(model)
                    runs += 1
                best[i] = min(best[i], (clock() - started) / runs)
            if done >= PROBE_MIN_ROUNDS and (len(models) == 1 or best[-1] >= CLEARLY_SLOWER * best[0]):
                break
    return best


def _seconds(m: Measurement) -> float:
    return m.seconds if m.seconds is not None else math.inf


def _weight_mb(m: Measurement) -> float:
    return m.weight_mb if m.weight_mb is not None else math.inf


def _slower(m: Measurement, fastest: Measurement) -> float:
    """How much slower ``m`` ran than ``fastest``: 0.05 is 5 %."""
    return _seconds(m) / _seconds(fastest) - 1


def _served(passing: Sequence[Measurement], fastest: Measurement) -> Measurement:
    """Of the candidates that passed the gate, the one with the smallest weights among the fastest
    and those close to it: within AS_FAST of its speed, or within MEMORY_SLACK where their weights
    hold MEMORY_SAVING less than the fastest's (the faster of equal weights). Where either's
    weights could not be counted, only the fastest is served."""
    saving = MEMORY_SAVING / 1e6

    def close(m: Measurement) -> bool:
        if m.weight_mb is None or fastest.weight_mb is None:
            return m is fastest
        slower = _slower(m, fastest)
        saves = _weight_mb(fastest) - _weight_mb(m)
        return m is fastest or slower <= AS_FAST or (slower <= MEMORY_SLACK and saves >= saving)

    return min(filter(close, passing), key=lambda m: (_weight_mb(m), _seconds(m)))


def _reason(
    cpu: CpuIdentity,
    gate: Gate,
    measured: list[Measurement],
    by_name: Mapping[str, Candidate],
    *,
    chosen: Measurement,
    fastest: Measurement,
) -> str:
    """The decision in words: "static INT8 was 0.83x FP32 on this CPU (AVX2, no VNNI; 2 threads):
    serving FP32"."""
    fp32_s = next(m.seconds for m in measured if m.name == FP32.name)
    speeds = []
    problems = []
    for m in measured:
        if m.name == FP32.name:
            continue
        if m.error is not None:
            problems.append(f"{by_name[m.name]} could not be used ({m.error[:160]})")
            continue
        ratio = (fp32_s or 0.0) / m.seconds if m.seconds else 0.0
        speeds.append(f"{by_name[m.name]} was {ratio:.2f}x FP32")
        if not m.passed:
            problems.append(
                f"{by_name[m.name]} failed the accuracy gate ({gate.metric} {m.agreement:.3f} "
                f"< {gate.threshold})"
            )
    text = (
        f"{', '.join(speeds) or 'only FP32 was tried'} on this CPU ({cpu.describe()}; {cpu.threads_text}): "
    )
    text += f"serving {by_name[chosen.name]}"
    if chosen.name != FP32.name:
        text += f" ({gate.metric} {chosen.agreement:.3f} vs FP32)"
    if chosen is not fastest:
        slack = AS_FAST if _slower(chosen, fastest) <= AS_FAST else MEMORY_SLACK
        text += (
            f", within {slack:.0%} of {by_name[fastest.name]}'s speed with "
            f"{_weight_mb(chosen):.0f} MB of weights instead of {_weight_mb(fastest):.0f}"
        )
    if problems:
        text += "; " + "; ".join(problems)
    return text


# ---- the choices file ---------------------------------------------------------------------------
class PrecisionChoices:
    """Decisions per role and model, each valid for the CPU it was measured on."""

    def __init__(self, path: Path) -> None:
        """Keep the choices in ``path`` (``<models>/precision-choices.json``)."""
        self.path = path
        self._lock = threading.Lock()

    @staticmethod
    def _key(role: Role, model_id: str) -> str:
        return f"{role.value}:{model_id}"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, role: Role, model_id: str, cpu: CpuIdentity) -> Decision | None:
        """The stored decision for this role, model and CPU; None when there is none, the CPU
        changed since, or an older version stored it (then the probe runs again)."""
        with self._lock:
            raw = self._read().get(self._key(role, model_id))
        if not isinstance(raw, dict):
            return None
        try:
            decision = Decision.from_json(raw)
        except (KeyError, TypeError, ValueError):
            return None
        if decision.cpu != cpu.key or decision.chosen not in {c.name for c in candidates(role, cpu)}:
            return None
        current = decision.format >= DECISION_FORMAT or (
            decision.format >= SATURATION_FREE_FORMAT and not cpu.int8_pairs_saturate
        )
        return decision if current else None

    def put(self, role: Role, decision: Decision) -> None:
        """Store ``decision`` (atomically: written beside the file, then renamed)."""
        with self._lock:
            data = self._read()
            data[self._key(role, decision.model_id)] = decision.to_json()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
            tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self.path)


def needs_probe(stored: Decision | None) -> bool:
    """Whether a role whose stored decision for this CPU is ``stored`` (None: there is none, or
    it is out of date) is measured at its next load: without one, or after a busy probe (at most
    MAX_BUSY_PROBES in all)."""
    return stored is None or (stored.busy and stored.probes < MAX_BUSY_PROBES)


def choose(
    role: Role,
    model_id: str,
    cpu: CpuIdentity,
    choices: PrecisionChoices,
    probe: Callable[[], Probe | ProbeProcess],
    *,
    clock: Callable[[], float] = time.perf_counter,
    exclusive: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    other_work: Callable[[], OtherWork] = OtherWork,
) -> tuple[Decision, bool]:
    """The decision for ``role`` on ``cpu``: the stored one, else a fresh probe (stored).

    ``probe`` is made (and may convert what it needs) before the timing starts; the timing runs
    inside ``exclusive()``, so that no other heavy work (a conversion, hashing a cached model's
    files) runs beside it. A decision whose timing shared more than BUSY_SHARE of the CPU with
    other work (measured by ``other_work()`` where the probe runs in this process, by the probe's
    own process otherwise) is measured again at the next start, up to MAX_BUSY_PROBES probes in
    all; the last one stands.
    Returns the decision and whether it was measured just now.
    """
    stored = choices.get(role, model_id, cpu)
    if stored is not None and not needs_probe(stored):
        return stored, False
    ready = probe()
    with exclusive():
        decision = decide(
            role, model_id, cpu, candidates(role, cpu), ready, clock=clock, other_work=other_work()
        )
    share = decision.other_work
    decision.busy = share is not None and share > BUSY_SHARE
    decision.probes = stored.probes + 1 if stored is not None else 1
    if decision.busy:
        decision.reason += f" (measured while other work took {share:.0%} of the CPU" + (
            "; measuring again at the next start)" if decision.probes < MAX_BUSY_PROBES else ")"
        )
    choices.put(role, decision)
    return decision, True
