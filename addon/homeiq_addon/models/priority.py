"""Priority from evidence and impact: how often a habit happens, how consistent it is, and what
it protects or saves. Each answer carries a short reason for the user.

Points add up from two parts (the habit: how often and how consistently; the impact); the
priority is the label whose centre is nearest, and the label probabilities fall off with the
distance to each centre, so a habit between two labels says so. Without evidence (older
clients) only the impact read from the context or the wording counts, and the reason says the
figures were missing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from .pattern_context import GUARDED_COVERS, HAZARD_CLASSES, LOCKING_ACTIONS, OFF_ACTIONS, SECURITY_DOMAINS
from .types import PRIORITIES, Evidence, PatternContext

# Centre of each label on the points scale; a habit gets the label of the nearest centre, so the
# borders are 1.5 (low/medium) and 2.75 (medium/high). A daily, reliable habit alone (2 points)
# is medium; it takes an energy or security impact to be high.
PRIORITY_CENTRES: Final[dict[str, float]] = {"high": 3.5, "medium": 2.0, "low": 1.0}
# Points per unit of distance to a centre in the label probabilities; smaller is sharper.
PRIORITY_SPREAD: Final = 0.5
HABIT_POINTS: Final = 2.0  # a habit seen on every eligible day of a regular habit
REGULAR_DAYS: Final = 10  # support days from which a habit counts fully (fewer: half, unless
# fewer than twice as many days were eligible)
RARE_DAYS: Final = 5  # fewer support days than this: no habit points at all
UNKNOWN_RATE: Final = 0.75  # the share of eligible days assumed when none is sent
CONSISTENT: Final = 0.85  # coverage and precision both at least this: "very consistently"
ERRATIC: Final = 0.4  # either below this: "not consistently" (-0.5)
LONG_ON_MIN: Final = 60  # an auto-off after this many minutes saves a lot (2 points)
SHORT_ON_MIN: Final = 15  # ... before this many, little (0.25); in between 1
NIGHT_HOURS: Final = frozenset({21, 22, 23, 0, 1, 2, 3, 4, 5})

_CLOCK = re.compile(r"\b(\d{1,2}):\d\d\b")
_NIGHT_WORDS = re.compile(r"\b(night|midnight|bedtime|go to bed|sunset|dark|evening)\b")
_MINUTES = re.compile(r"\babout (\d+) min after (it|they)\b|\bafter (\d+) (min|minutes)\b")
_HOURS = re.compile(r"\babout (\d+) h after (it|they)\b|\bafter (\d+|an|one|two|three) (hours?|h)\b")
_WORD_NUMBERS: Final = {"an": 1, "one": 1, "two": 2, "three": 3}


@dataclass(frozen=True, slots=True)
class PriorityAssessment:
    """A priority, every label's probability, and why."""

    priority: str
    scores: dict[str, float]
    reason: str


def _habit(evidence: Evidence) -> tuple[float, str]:
    """Points for how often and how consistently the habit happens, and the words for it."""
    days, eligible = evidence.support_days, evidence.eligible_days
    # The share of eligible days says how regular the habit is; a client that sends no day counts
    # may still send the share of the action's changes it explains.
    rate = days / eligible if days is not None and eligible else evidence.coverage
    if days is None:
        if evidence.occurrences is None:
            return 0.0, ""
        frequent = evidence.occurrences >= 2 * REGULAR_DAYS
        return (1.0 if frequent else 0.5), f"Seen {evidence.occurrences} times"
    seen = f"on {days} of {eligible} days" if eligible else f"on {days} days"
    if days < RARE_DAYS:
        return 0.0, f"Seen only {seen}"
    # Few eligible days (a weekend habit in a month) can still be every one of them.
    regular = days >= REGULAR_DAYS or (eligible is not None and eligible < 2 * REGULAR_DAYS)
    scale = HABIT_POINTS if regular else HABIT_POINTS / 2
    points = scale * (rate if rate is not None else UNKNOWN_RATE)
    figures = [f for f in (rate, evidence.precision) if f is not None]
    if figures and min(figures) >= CONSISTENT:
        return points, f"Happens {seen}, very consistently,"
    if figures and min(figures) < ERRATIC:
        return points - 0.5, f"Happens {seen}, not consistently,"
    return points, f"Happens {seen}"


def _minutes_on(text: str) -> int | None:
    if match := _MINUTES.search(text):
        return int(match[1] or match[3])
    if match := _HOURS.search(text):
        value = match[1] or match[3]
        return 60 * (int(value) if value.isdigit() else _WORD_NUMBERS[value])
    return None


def _at_night(text: str) -> bool:
    if match := _CLOCK.search(text):
        return int(match[1]) in NIGHT_HOURS
    return bool(_NIGHT_WORDS.search(text))


def _impact(text: str, category: str, context: PatternContext) -> tuple[float, str]:  # noqa: PLR0911
    """Points and a phrase for what the automation protects or saves."""
    lower = text.lower()
    domains = set(context.domains)
    classes = set(context.device_classes)
    switching_off = context.action in OFF_ACTIONS
    if "lock" in domains or (context.action == "locked"):
        night = " at night" if _at_night(lower) else ""
        return 2.0, f"guards against a door left unlocked{night}"
    if context.action in LOCKING_ACTIONS or "alarm_control_panel" in domains:
        return 2.0, "keeps the alarm from being forgotten"
    if "cover" in domains and classes & GUARDED_COVERS and context.action == "closed":
        return 2.0, "guards against a garage door or gate left open"
    if classes & HAZARD_CLASSES:
        return 2.0, "warns of a hazard in time"
    if domains & SECURITY_DOMAINS:
        return 1.0, "adds to the home's security"
    minutes = _minutes_on(lower)
    if context.kind == "duration" or (minutes is not None and switching_off):
        if minutes is not None and minutes >= LONG_ON_MIN:
            hours = round(minutes / 60)
            span = "an hour" if hours == 1 else f"{hours} hours"
            return 2.0, f"stops something being left on for about {span}"
        if minutes is not None and minutes < SHORT_ON_MIN:
            return 0.25, "switches off what would otherwise stay on"
        return 1.0, "switches off what would otherwise stay on"
    if switching_off and domains & {"climate", "water_heater"}:
        return 1.5, "lowers heating or cooling that would otherwise run"
    if switching_off:
        return 0.25, "switches off what is otherwise forgotten now and then"
    if category == "security":
        return 1.0, "adds to the home's security"
    return 0.0, ""


def assess_priority(text: str, category: str, context: PatternContext) -> PriorityAssessment:
    """Priority of one pattern from its evidence (when sent) and its impact."""
    points, impact_phrase = _impact(text, category, context)
    lead = ""
    if context.evidence is not None:
        habit, lead = _habit(context.evidence)
        points += habit
    if not lead:
        what = f": it {impact_phrase}" if impact_phrase else ""
        reason = f"No evidence sent; judged from the wording{what}"
    elif impact_phrase:
        reason = f"{lead} and {impact_phrase}"
    else:
        reason = lead.rstrip(",")
    weights = {label: -abs(points - centre) / PRIORITY_SPREAD for label, centre in PRIORITY_CENTRES.items()}
    top = max(weights.values())
    total = sum(math.exp(w - top) for w in weights.values())
    scores = {label: math.exp(weights[label] - top) / total for label in PRIORITIES}
    priority = max(PRIORITIES, key=scores.__getitem__)
    return PriorityAssessment(priority, scores, reason)
