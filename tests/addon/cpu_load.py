"""Other work on the CPU, for tests of what the add-on makes of it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

from homeiq_addon.models.other_work import OtherWork
from homeiq_addon.models.runtime import usable_cpus


@contextlib.contextmanager
def spinning_beside() -> Iterator[None]:
    """A process spinning on each usable CPU while the block runs (started before it)."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(len(usable_cpus()))
    ]
    try:
        time.sleep(0.3)  # started
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


class FixedShare(OtherWork):
    """Other work that took ``share`` of the CPU while something was timed (None: not known)."""

    def __init__(self, share: float | None) -> None:
        super().__init__()
        self.fixed = share

    def share(self) -> float | None:
        return self.fixed
