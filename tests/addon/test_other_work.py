"""The share of the CPU other work took while something was measured (other_work.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from homeiq_addon.models.other_work import MIN_MEASURED_S, OtherWork, busy_seconds, with_ended_children
from tests.addon.cpu_load import spinning_beside

# /proc/stat as Linux writes it: the total, then one line per CPU (user nice system idle iowait
# irq softirq steal guest guest_nice), then other counters.
STAT = """cpu  {t0} 0 0 900 0 0 0 0 0 0
cpu0 {c0} 0 {s0} 500 7 0 0 {st0} 3 0
cpu1 {c1} 0 0 400 0 1 1 0 0 0
cpu2 1000 0 0 0 0 0 0 0 0 0
intr 12345 0 0
ctxt 999
"""


class Readings:
    """A fake /proc/stat, process clock and wall clock that the test moves by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wall = 0.0
        self.own = 0.0
        self.write(c0=0, s0=0, st0=0, c1=0)

    def write(self, **ticks: int) -> None:
        self.path.write_text(STAT.format(t0=sum(ticks.values()), **ticks), encoding="ascii")


def test_busy_seconds_count_the_usable_cpus_work_and_steal_but_not_idle_or_iowait() -> None:
    text = STAT.format(t0=0, c0=100, s0=20, st0=5, c1=30)
    assert busy_seconds(text, frozenset({0}), 0.01) == pytest.approx(1.25)  # not iowait or guest
    assert busy_seconds(text, frozenset({0, 1}), 0.01) == pytest.approx(1.57)  # cpu1: user, irq, softirq
    assert busy_seconds(text, frozenset({5}), 0.01) == 0.0


def test_other_work_is_what_the_cpus_did_less_this_processs_own_time(tmp_path: Path) -> None:
    fake = Readings(tmp_path / "stat")
    meter = OtherWork(stat=fake.path, cpus=frozenset({0, 1}), own=lambda: fake.own, clock=lambda: fake.wall)
    assert meter.share() is None  # nothing measured yet
    with meter.window():
        fake.wall += 1.0
        fake.own += 0.9  # the probe: 0.9 s of CPU ...
        fake.write(c0=90, s0=0, st0=0, c1=50)  # ... and 0.5 s of something else on cpu1
    assert meter.share() == pytest.approx(0.25)  # 0.5 s of 2 CPUs x 1 s
    fake.write(c0=500, s0=0, st0=0, c1=50)  # between windows: not counted
    with meter.window():
        fake.wall += 1.0
        fake.own += 1.0
        fake.write(c0=600, s0=0, st0=150, c1=50)  # the hypervisor took 1.5 s (steal)
    assert meter.share() == pytest.approx(0.5)  # (0.5 + 1.5) s of 2 CPUs x 2 s


def test_what_cannot_be_told_is_none(tmp_path: Path) -> None:
    fake = Readings(tmp_path / "stat")
    short = OtherWork(stat=fake.path, cpus=frozenset({0}), own=lambda: 0.0, clock=lambda: fake.wall)
    with short.window():
        fake.wall += MIN_MEASURED_S / 2
        fake.write(c0=50, s0=0, st0=0, c1=0)
    assert short.share() is None  # too short to say: the kernel counts in ticks
    unreadable = OtherWork(stat=tmp_path / "missing", cpus=frozenset({0}))
    with unreadable.window():
        time.sleep(MIN_MEASURED_S)
    assert unreadable.share() is None  # not Linux, or /proc hidden


def spin(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def test_the_kernels_counters_see_a_process_beside_this_one_and_not_this_one() -> None:
    own = OtherWork()
    with own.window():
        spin(1.0)
    other = OtherWork()
    with spinning_beside(), other.window():
        time.sleep(1.0)
    own_share, other_share = own.share(), other.share()
    assert own_share is not None and other_share is not None
    # Every usable CPU taken beside: all of their time. This process's own spinning (half of two
    # cores, all of one) is not other work: only the machine's background is left of it.
    assert other_share > 0.9, other_share
    assert own_share + 0.6 < other_share, (own_share, other_share)


def test_a_benchmarks_ended_children_are_its_own_work() -> None:
    """A benchmark's servers run in processes of their own: once they have ended and been waited
    for, with_ended_children counts them as its own work."""
    alone, with_children = OtherWork(), OtherWork(own=with_ended_children)
    with alone.window(), with_children.window(), spinning_beside():
        time.sleep(1.0)
    alone_share, children_share = alone.share(), with_children.share()
    assert alone_share is not None and children_share is not None
    assert alone_share > 0.6 and children_share + 0.5 < alone_share, (alone_share, children_share)
