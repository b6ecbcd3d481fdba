"""``precision: auto``'s probe, run in a process of its own.

The probe compiles and runs every candidate of a role (up to four, most of which the add-on will
never serve). Run in the add-on's process, what that left behind (oneDNN's kernel cache, heap
that ``malloc_trim`` cannot return) stayed until the next start: on a 2-core AMX Xeon the default
image's first start held 516-526 MB after load against 457-467 MB for a start from the cache. And
a candidate that crashed the process (OpenVINO aborts on some compile errors) took the add-on
down with it, at every start, since no choice was stored. Here the add-on keeps only the
decision; a candidate that ends the probe's process is left out, and the probe runs again
without it.

The add-on runs ``python -m homeiq_addon.models.probe_process`` with the probe's spec as JSON on
stdin; the child writes the decision as JSON on stdout, its log and what it tries on stderr.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import precision as precisions, runtime
from .children import ChildProcesses
from .instantiate import instantiate
from .loaded import LoadOptions
from .pattern_texts import pattern_texts, query_texts
from .types import Role

_LOGGER = logging.getLogger(__name__)
MODULE = "homeiq_addon.models.probe_process"
# A Raspberry Pi-class CPU times the reranker's four candidates in minutes, not hours.
PROBE_TIMEOUT_S = 1800
# What the child writes on stderr before it loads a candidate, and once that candidate has run.
TRYING, TRIED = "probe: trying", "probe: tried"
_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) (homeiq_addon[\w.]*): (.*)$")


class RoleProbe:
    """The probe's inputs: representative pattern texts (not the calibration set's seed) through
    each candidate model's own inference method."""

    EMBED_TEXTS = 64
    RERANK_DOCUMENTS = 24
    CLASSIFY_TEXTS = 12

    def __init__(self, role: Role, load: Callable[[precisions.Candidate], Any], models_root: Path) -> None:
        self.role = role
        self._load = load
        self._root = models_root
        self._untried: str | None = None
        if role is Role.EMBEDDING:
            self._texts = pattern_texts(self.EMBED_TEXTS, seed=71)
        elif role is Role.RERANKER:
            self._texts = pattern_texts(self.RERANK_DOCUMENTS, seed=73)
        else:
            self._texts = pattern_texts(self.CLASSIFY_TEXTS, seed=79)
        self._query = query_texts()[0]

    def load(self, candidate: precisions.Candidate) -> Any:
        """A model of ``candidate``, unwarmed (the probe's first run warms its shapes)."""
        print(f"{TRYING} {candidate.name}", file=sys.stderr, flush=True)
        self._untried = candidate.name
        return self._load(candidate)

    def run(self, model: Any) -> Any:
        """Embeddings, relevance scores, or the category and priority probabilities per text."""
        if self.role is Role.EMBEDDING:
            answers: Any = model.embed(self._texts)
        elif self.role is Role.RERANKER:
            answers = model.score(self._query, self._texts)
        else:
            answers = [(c.category_scores, c.priority_scores) for c in model.classify(self._texts)]
        if self._untried is not None:  # the candidate loaded last ran once: it is not what crashes
            print(f"{TRIED} {self._untried}", file=sys.stderr, flush=True)
            self._untried = None
        return answers

    def weight_bytes(self, model: Any) -> int:
        """How much memory the model's weights hold (BucketedModel.weight_bytes)."""
        return int(model.weight_bytes())

    def settle(self) -> None:
        """The pages of the model files loading read, and the heap that loading or a dropped
        model freed, back to the system (as after the served model's warm-up)."""
        gc.collect()  # a dropped candidate's compiled graphs go now, not at some later collection
        runtime.release_file_pages([self._root])
        runtime.release_free_heap()


@dataclass
class ProbeInChild(precisions.ProbeProcess):
    """The add-on's side: runs the probe in a child process and reads its decision back.

    ``entries``: each candidate's cache entry (path, model id), for those that could be made;
    ``left_out``: why each other candidate cannot be tried."""

    role: Role
    entries: Mapping[str, tuple[Path, str]]
    left_out: Mapping[str, str]
    options: LoadOptions
    models_root: Path
    children: ChildProcesses

    def decide(
        self, role: Role, model_id: str, cpu: precisions.CpuIdentity, tried: list[precisions.Candidate]
    ) -> precisions.Decision:
        """The decision the child measured; a candidate that ended the child's process is left out
        and the child started again, until one ends without a crash or FP32 is what crashes."""
        left_out = dict(self.left_out)
        while True:
            child = self.children.run_module(
                MODULE,
                [],
                timeout=PROBE_TIMEOUT_S,
                stdin=json.dumps(self._spec(model_id, cpu, tried, left_out)),
            )
            _relay(child.stderr)
            if child.returncode == 0 and not child.timed_out:
                return precisions.Decision.from_json(json.loads(child.stdout))
            how = f"took longer than {PROBE_TIMEOUT_S} s" if child.timed_out else _ending(child.returncode)
            culprit = _untried(child.stderr)
            if culprit is None or culprit == precisions.FP32.name or culprit in left_out:
                lines = [line for line in child.stderr.splitlines() if line.strip()]
                raise RuntimeError(
                    f"measuring the precisions of the {role.value} model failed: the probe's process "
                    f"{how}" + (f" ({lines[-1][:300]})" if lines else "")
                )
            why = f"the probe's process {how} while trying it"
            _LOGGER.warning(
                "Could not try %s for the %s model: %s",
                precisions.candidate_for(role, culprit),
                role.value,
                why,
            )
            left_out[culprit] = why

    def _spec(
        self,
        model_id: str,
        cpu: precisions.CpuIdentity,
        tried: list[precisions.Candidate],
        left_out: Mapping[str, str],
    ) -> dict[str, Any]:
        options = dataclasses.asdict(self.options)
        options["cache_dir"] = str(self.options.cache_dir) if self.options.cache_dir else None
        return {
            "role": self.role.value,
            "model_id": model_id,
            "cpu": {"model": cpu.model, "flags": list(cpu.flags), "threads": cpu.threads},
            "tried": [c.name for c in tried],
            "entries": {name: [str(path), entry_id] for name, (path, entry_id) in self.entries.items()},
            "left_out": dict(left_out),
            "options": options,
            "models_root": str(self.models_root),
        }


def _relay(stderr: str) -> None:
    """The child's log lines, logged here under their own loggers (the rest is left out)."""
    for line in stderr.splitlines():
        if found := _LOG_LINE.match(line):
            level, name, message = found.groups()
            logging.getLogger(name).log(logging.getLevelNamesMapping()[level], "%s", message)


def _untried(stderr: str) -> str | None:
    """The candidate the child was loading or first running when it ended, if any."""
    pending: str | None = None
    for line in stderr.splitlines():
        if line.startswith(TRYING + " "):
            pending = line[len(TRYING) + 1 :].strip()
        elif line.startswith(TRIED + " "):
            pending = None
    return pending


def _ending(returncode: int) -> str:
    """How a child ended, in words."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        killed = " (most often: the system ran out of memory)" if -returncode == signal.SIGKILL else ""
        return f"was ended by {name}{killed}"
    return f"exited with status {returncode}"


def main() -> int:
    """The child: measure the candidates the spec names and print the decision."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    spec = json.loads(sys.stdin.read())
    role = Role(spec["role"])
    cpu = precisions.CpuIdentity(spec["cpu"]["model"], tuple(spec["cpu"]["flags"]), spec["cpu"]["threads"])
    options = LoadOptions(
        **{
            **spec["options"],
            "cache_dir": spec["options"]["cache_dir"] and Path(spec["options"]["cache_dir"]),
        }
    )
    root = Path(spec["models_root"])
    entries = {name: (Path(path), entry_id) for name, (path, entry_id) in spec["entries"].items()}

    def load(candidate: precisions.Candidate) -> Any:
        path, entry_id = entries[candidate.name]
        return instantiate(role, path, entry_id, options, inference=candidate.inference, models_root=root)

    decision = precisions.decide(
        role,
        spec["model_id"],
        cpu,
        [precisions.candidate_for(role, name) for name in spec["tried"]],
        RoleProbe(role, load, root),
        left_out=spec["left_out"],
    )
    print(json.dumps(decision.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
