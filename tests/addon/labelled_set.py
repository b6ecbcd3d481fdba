"""The hand-labelled evaluation set for the classifier (``data/labelled_patterns.psv``).

Each line: category | priority (or -) | kind | trigger | domains | action | device classes |
trigger domains | evidence (occurrences/support days/eligible days/coverage/precision) | text.
Lists are comma-separated; an empty field is absent. The split into a development and a held-out
half is fixed by a hash of the text (half of each category each), so tuning never sees the
held-out half.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from homeiq_addon.models.types import CATEGORIES, Evidence, PatternContext

DATA_FILE = Path(__file__).parent / "data" / "labelled_patterns.psv"
SPLITS = ("dev", "heldout")


@dataclass(frozen=True, slots=True)
class LabelledPattern:
    """One evaluation text with its context and its labels."""

    text: str
    category: str
    priority: str | None
    context: PatternContext
    split: str


def _list(field: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in field.split(",") if part.strip())


def _evidence(field: str) -> Evidence | None:
    if not field:
        return None
    occurrences, support, eligible, coverage, precision = field.split("/")
    return Evidence(int(occurrences), int(support), int(eligible), float(coverage), float(precision))


def _parse(line: str) -> tuple[str, str | None, PatternContext, str]:
    category, priority, kind, trigger, domains, action, classes, trigger_domains, evidence, text = (
        part.strip() for part in line.split("|")
    )
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r} in {line!r}")
    context = PatternContext(
        kind=kind or None,
        trigger=trigger or None,
        domains=_list(domains),
        trigger_domains=_list(trigger_domains),
        device_classes=_list(classes),
        action=action or None,
        targets=1 if domains else None,
        evidence=_evidence(evidence),
    )
    return category, None if priority == "-" else priority, context, text


def load_labelled_set(split: str | None = None) -> list[LabelledPattern]:
    """Every labelled pattern, or those of one split ("dev" or "heldout")."""
    rows = [
        _parse(line)
        for line in DATA_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    out: list[LabelledPattern] = []
    for category in CATEGORIES:
        mine = sorted(
            (r for r in rows if r[0] == category),
            key=lambda r: hashlib.sha256(r[3].encode()).hexdigest(),
        )
        out += [
            LabelledPattern(text, cat, priority, context, SPLITS[i % 2])
            for i, (cat, priority, context, text) in enumerate(mine)
        ]
    return [p for p in out if split is None or p.split == split]
