"""The add-on's child processes (conversions, precision probes): run with this package
importable, and killed when the add-on stops."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .types import STOPPING, ModelCacheError

_ADDON_ROOT = str(Path(__file__).resolve().parents[2])  # so a child imports this package


@dataclass(frozen=True, slots=True)
class ChildResult:
    """How a child process ended and what it wrote."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


class ChildProcesses:
    """Runs ``python -m <module>`` children one call at a time per thread; :meth:`close` kills
    those running and refuses new ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._closed = False

    def run_module(
        self, module: str, args: list[str], *, timeout: float, stdin: str | None = None
    ) -> ChildResult:
        """Run ``module`` with ``args`` to its end (killed after ``timeout`` seconds). Raises
        ModelCacheError (``stopping``) when the add-on stops before or while it runs: a child
        killed then has not failed."""
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONIOENCODING": "utf-8"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ADDON_ROOT, env.get("PYTHONPATH")) if p)
        with self._lock:
            if self._closed:
                raise ModelCacheError("the add-on is stopping", STOPPING)
            # Explicit UTF-8 both ways: a converter's progress bars print "█", and the locale's
            # encoding in this process is not reliably UTF-8.
            child = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                encoding="utf-8",
                errors="replace",
                env=env,
            )
            self._running.add(child)
        timed_out = False
        try:
            try:
                out, err = child.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                out, err = child.communicate()
                timed_out = True
        finally:
            with self._lock:
                self._running.discard(child)
                stopped = self._closed
        if child.returncode != 0 and stopped:
            raise ModelCacheError("the add-on is stopping", STOPPING)
        return ChildResult(child.returncode, out, err, timed_out)

    def close(self) -> None:
        """Kill the children still running, and start no new ones."""
        with self._lock:
            self._closed = True
            for child in self._running:
                child.kill()
