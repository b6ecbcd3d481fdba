"""Scoring mined patterns against a synthetic home's ground truth.

Reports recall of planted routines (overall and per phenomenon), patterns about noise entities,
automation effects wrongly suggested, and duplicates: a second pattern for one planted routine, or
a pattern that acts on only some members of a planted group (the per-lamp near-copies). Patterns
that match no planted routine but touch neither noise nor automated entities are listed as
``other`` (real but unplanted regularities, such as the evening 'off' that follows a planted
'on'); they are not errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from custom_components.homeiq.patterns import MiningOptions, Pattern, mine_patterns
from custom_components.homeiq.patterns.stats import circular_distance
from custom_components.homeiq.patterns.sun import sun_event_utc

from .synthetic_home import DEFAULT_END, PlantedRoutine, SyntheticHome, generate_home

TIME_TOLERANCE_MIN = 30.0
SUN_TOLERANCE_MIN = 20.0
DAY_SETS = {
    None: "daily",
    ("mon", "tue", "wed", "thu", "fri"): "weekdays",
    ("sat", "sun"): "weekend",
}


@dataclass
class Score:
    """How one home's patterns compare with its planted routines."""

    seed: int
    routines: int
    found: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    noise_patterns: list[str] = field(default_factory=list)
    automation_effects: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    phenomena: dict[str, list[int]] = field(default_factory=dict)  # name: [found, planted, duplicates]
    other: list[str] = field(default_factory=list)
    patterns: int = 0
    events: int = 0
    seconds: float = 0.0

    @property
    def recall(self) -> float:
        """Share of planted routines found."""
        return len(self.found) / self.routines if self.routines else 1.0


def _minutes(at: str) -> float:
    hours, minutes = at.split(":")
    return int(hours) * 60 + int(minutes)


def _day_set(pattern: Pattern) -> str:
    weekdays = (pattern.conditions or {}).get("weekdays")
    return DAY_SETS.get(tuple(weekdays) if weekdays else None, "other")


def _has_condition(pattern: Pattern, key: str, routine: PlantedRoutine) -> bool:
    conditions = pattern.conditions or {}
    if key == "target":
        return any(
            set(entry["entity_id"] if isinstance(entry["entity_id"], list) else [entry["entity_id"]])
            == set(routine.action_entities)
            for entry in conditions.get("states", [])
        )
    kind, _, value = key.partition("=")
    return bool(conditions.get(kind) == value)


def matches(routine: PlantedRoutine, pattern: Pattern) -> bool:
    """Whether ``pattern`` reports ``routine`` (same targets, trigger, conditions and day set,
    within tolerance)."""
    if set(pattern.targets) != set(routine.action_entities) or pattern.action.get("state") != routine.state:
        return False
    if not all(_has_condition(pattern, key, routine) for key in routine.conditions):
        return False
    trigger = pattern.trigger
    if routine.kind == "time_of_day":
        assert routine.at_min is not None
        return (
            pattern.kind == "time_of_day"
            and _day_set(pattern) == routine.days
            and float(circular_distance(_minutes(trigger["at"]), routine.at_min)) <= TIME_TOLERANCE_MIN
        )
    if routine.kind == "sun":
        assert routine.offset_min is not None
        return (
            pattern.kind == "sun"
            and trigger.get("event") == routine.sun_event
            and _day_set(pattern) == routine.days
            and abs(float(trigger["offset_min"]) - routine.offset_min) <= SUN_TOLERANCE_MIN
        )
    if routine.kind == "sequence":
        return (
            pattern.kind == "sequence"
            and trigger.get("entity_id") == routine.trigger_entity
            and trigger.get("to") == routine.trigger_state
        )
    assert routine.for_min is not None
    return pattern.kind == "duration" and abs(float(trigger["for_min"]) - routine.for_min) <= max(
        2.0, 0.3 * routine.for_min
    )


def _clock_fits_sun(home: SyntheticHome, routine: PlantedRoutine, pattern: Pattern) -> bool:
    """A clock time reports a sun-relative routine when the sun moves too little in the window to
    tell them apart (near a solstice): within ``SUN_TOLERANCE_MIN`` of it on every day."""
    if routine.kind != "sun" or pattern.kind != "time_of_day" or routine.offset_min is None:
        return False
    if set(pattern.targets) != {routine.entity_id} or pattern.action.get("state") != routine.state:
        return False
    zone = ZoneInfo(home.time_zone)
    at = _minutes(pattern.trigger["at"])
    day = home.start.astimezone(zone).date()
    while day <= home.end.astimezone(zone).date():
        event = sun_event_utc(
            day, home.latitude, home.longitude, "sunset" if routine.sun_event == "sunset" else "sunrise"
        )
        if event is None:
            return False
        local = (event + timedelta(minutes=routine.offset_min)).astimezone(zone)
        if float(circular_distance(local.hour * 60 + local.minute, at)) > SUN_TOLERANCE_MIN:
            return False
        day += timedelta(days=1)
    return True


def score_home(home: SyntheticHome, patterns: Sequence[Pattern]) -> Score:
    """Compare ``patterns`` mined from ``home`` with its ground truth."""
    score = Score(
        seed=home.seed, routines=len(home.routines), patterns=len(patterns), events=len(home.events)
    )
    matched: set[str] = set()
    for routine in home.routines:
        hits = [p for p in patterns if matches(routine, p) or _clock_fits_sun(home, routine, p)]
        (score.found if hits else score.missed).append(routine.name)
        copies = [p.id for p in hits[1:]]
        # Some lamps of a planted group, on their own, are near-copies of the group's habit.
        copies += [
            p.id
            for p in patterns
            if set(p.targets) < set(routine.targets) and p.action.get("state") == routine.state
        ]
        score.duplicates.extend(copies)
        matched.update(p.id for p in hits)
        matched.update(copies)
        for phenomenon in routine.phenomena:
            counts = score.phenomena.setdefault(phenomenon, [0, 0, 0])
            counts[0] += bool(hits)
            counts[1] += 1
            counts[2] += len(copies)
    for pattern in patterns:
        if set(pattern.entities) & home.noise_entities:
            score.noise_patterns.append(pattern.id)
        elif set(pattern.targets) & home.automated_entities:
            score.automation_effects.append(pattern.id)
        elif pattern.id not in matched:
            score.other.append(pattern.id)
    return score


def score_seeds(
    seeds: Iterable[int], *, days: int = 28, end: datetime = DEFAULT_END, options: MiningOptions | None = None
) -> list[Score]:
    """Generate, mine and score one home per seed."""
    scores = []
    for seed in seeds:
        home = generate_home(seed, days, end=end)
        started = datetime.now(UTC)
        patterns = mine_patterns(
            home.events,
            home.home_context(),
            existing_automations=home.automations,
            options=options or MiningOptions(),
            now=home.end,
        )
        score = score_home(home, patterns)
        score.seconds = (datetime.now(UTC) - started).total_seconds()
        scores.append(score)
    return scores
