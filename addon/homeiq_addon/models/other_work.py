"""How much of the usable CPUs' time went to other work while this process measured something.

``precision: auto``'s probe ranks candidates by timing them, and other work on the same cores
(Home Assistant, another add-on, the hypervisor taking a core: steal) skews that ranking. The
probe judged this by the 1-minute load average before, which lags and counts the add-on's own
work: on one core every first start's probes came out "busy" from the conversions that had
just finished before them, and were measured again at the next starts. This reads what the
kernel counts per CPU (``/proc/stat``) and takes away this process's own CPU time, over exactly
the windows measured, so that only work beside the probe counts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .runtime import usable_cpus

PROC_STAT = Path("/proc/stat")
# /proc/stat's fields per CPU that count time spent on something: user, nice, system, (idle,
# iowait skipped), irq, softirq, steal (a guest's user time is already in user).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
# Windows shorter than this in all say nothing: the kernel counts in ticks (10 ms).
MIN_MEASURED_S = 0.5


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading: wall-clock seconds, CPU seconds spent on the usable CPUs by anything, and
    CPU seconds of this process's own work (every thread; :class:`OtherWork`'s ``own``)."""

    wall: float
    busy: float
    own: float


def with_ended_children() -> float:
    """CPU seconds of this process and of its children that have ended and been waited for: a
    benchmark's own work when it runs servers or conversions in processes of their own."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def busy_seconds(stat_text: str, cpus: frozenset[int], tick_s: float) -> float:
    """CPU seconds the kernel counted as spent (not idle) on ``cpus``, from /proc/stat's text."""
    total = 0
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        fields = rest.split()
        total += sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
    return total * tick_s


class OtherWork:
    """Measures, over the windows it is given, what share of the usable CPUs' time went to
    anything but this process: 0.0 on an idle machine, 0.5 with one of two cores taken."""

    def __init__(
        self,
        *,
        stat: Path = PROC_STAT,
        cpus: frozenset[int] | None = None,
        own: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read ``stat`` (the kernel's counters) for ``cpus`` (default: the usable ones)."""
        self._stat = stat
        self._cpus = cpus if cpus is not None else usable_cpus()
        self._own = own
        self._clock = clock
        self._tick_s = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
        self._wall = self._others = 0.0
        self._unreadable = False

    def _sample(self) -> Sample | None:
        try:
            text = self._stat.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):  # not Linux, or /proc hidden: say nothing
            return None
        return Sample(self._clock(), busy_seconds(text, self._cpus, self._tick_s), self._own())

    @contextlib.contextmanager
    def window(self) -> Iterator[None]:
        """Count what other work did while the block runs."""
        start = self._sample()
        try:
            yield
        finally:
            end = self._sample()
            if start is None or end is None:
                self._unreadable = True
            else:
                self._wall += end.wall - start.wall
                self._others += max(0.0, (end.busy - start.busy) - (end.own - start.own))

    def share(self) -> float | None:
        """Other work's share of the usable CPUs' time in the windows so far (0.0-1.0), or None
        where it cannot be told (no kernel counters, or less than MIN_MEASURED_S measured)."""
        if self._unreadable or self._wall < MIN_MEASURED_S or not self._cpus:
            return None
        return min(1.0, self._others / (self._wall * len(self._cpus)))
