"""CLI for the evaluation.

``python -m evaluation score --seeds 1 2 3`` scores the engine on synthetic homes;
``python -m evaluation generate --seed 1 --out DIR`` writes one home's events and ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from .score import Score, score_seeds
from .synthetic_home import DEFAULT_END, PHENOMENA, generate_home

TARGET_RECALL = 0.95


def phenomenon_table(scores: Sequence[Score]) -> list[str]:
    """Recall and duplicates per phenomenon over all seeds, and the wrong patterns, as Markdown
    table rows (the README's table)."""
    rows = ["| Phenomenon | Planted routines found | Recall | Duplicates |", "|---|---|---|---|"]
    for name in PHENOMENA:
        found, planted, copies = (sum(s.phenomena.get(name, [0, 0, 0])[i] for s in scores) for i in range(3))
        if planted:
            rows.append(f"| {name} | {found} / {planted} | {found / planted:.0%} | {copies} |")
    noise = sum(len(s.noise_patterns) for s in scores)
    effects = sum(len(s.automation_effects) for s in scores)
    rows.append(f"| noise: random toggles, chatty sensors | {noise} patterns | | |")
    rows.append(f"| existing automations' effects | {effects} patterns | | |")
    return rows


def _targets_met(scores: Sequence[Score]) -> bool:
    for name in PHENOMENA:
        found = sum(s.phenomena.get(name, [0, 0, 0])[0] for s in scores)
        planted = sum(s.phenomena.get(name, [0, 0, 0])[1] for s in scores)
        if planted and found / planted < TARGET_RECALL:
            return False
    return not any(s.noise_patterns or s.automation_effects or s.duplicates for s in scores)


def _end(value: str) -> datetime:
    end = datetime.fromisoformat(value)
    if end.tzinfo is None:
        raise argparse.ArgumentTypeError("needs a UTC offset")
    return end


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; ``score`` exits 1 when a seed misses the targets."""
    parser = argparse.ArgumentParser(prog="python -m evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="generate, mine and score synthetic homes")
    score.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    score.add_argument("--days", type=int, default=28)
    score.add_argument("--end", type=_end, default=DEFAULT_END)
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    generate = commands.add_parser("generate", help="write a synthetic home's events and ground truth")
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--days", type=int, default=28)
    generate.add_argument("--end", type=_end, default=DEFAULT_END)
    generate.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "generate":
        home = generate_home(args.seed, args.days, end=args.end)
        home.write(args.out)
        print(f"{len(home.events)} events, {len(home.routines)} planted routines -> {args.out}")
        return 0

    scores = score_seeds(args.seeds, days=args.days, end=args.end)
    ok = _targets_met(scores)
    if args.json:
        print(json.dumps([{**asdict(s), "recall": s.recall} for s in scores], indent=2))
        return 0 if ok else 1
    header = ("seed", "events", "recall", "noise", "autom.", "dupl.", "other", "patterns", "mine s")
    print("{:>4} {:>7} {:>7} {:>5} {:>6} {:>5} {:>5} {:>8} {:>7}".format(*header))
    for s in scores:
        print(
            f"{s.seed:>4} {s.events:>7} {s.recall:>7.0%} {len(s.noise_patterns):>5} "
            f"{len(s.automation_effects):>6} {len(s.duplicates):>5} {len(s.other):>5} {s.patterns:>8} "
            f"{s.seconds:>7.2f}"
        )
        for name in s.missed:
            print(f"     missed: {name}")
        for pattern_id in s.noise_patterns + s.automation_effects + s.duplicates:
            print(f"     wrong:  {pattern_id}")
    mean_recall = sum(s.recall for s in scores) / len(scores) if scores else 0.0
    print(f"mean recall over {len(scores)} seeds: {mean_recall:.1%}")
    print("\n".join(phenomenon_table(scores)))
    verdict = "met" if ok else "NOT met"
    print(
        f"targets (recall >= {TARGET_RECALL:.0%} per phenomenon, no noise, no automation effects, "
        f"no duplicates): {verdict}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
