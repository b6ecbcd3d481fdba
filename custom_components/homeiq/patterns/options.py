"""Every threshold and window of the pattern engine, with its unit, in one place."""

from __future__ import annotations

from dataclasses import dataclass

# Domains that never hold a habit of their own: measurements, bookkeeping and our own machinery.
# automation/script records are still read, to tell which changes they caused (see events.py).
DEFAULT_EXCLUDED_DOMAINS = frozenset(
    {
        "automation",
        "button",
        "calendar",
        "camera",
        "conversation",
        "counter",
        "event",
        "image",
        "input_button",
        "input_number",
        "input_text",
        "number",
        "persistent_notification",
        "scene",
        "script",
        "select",
        "sensor",
        "stt",
        "sun",
        "text",
        "timer",
        "tts",
        "update",
        "weather",
        "zone",
    }
)


@dataclass(frozen=True)
class MiningOptions:
    """Thresholds and windows for mining; the defaults suit a month of a typical home."""

    # --- what is read
    window_days: int = 28
    """Days of history (before ``now``) that are mined."""
    excluded_domains: frozenset[str] = DEFAULT_EXCLUDED_DOMAINS
    """Entity domains ignored entirely (neither trigger nor action)."""
    excluded_entities: frozenset[str] = frozenset()
    """Entity ids ignored entirely."""
    excluded_users: frozenset[str] = frozenset()
    """User ids whose changes are not habits (service accounts, guests); like automation changes."""

    # --- evidence every pattern needs
    min_support_days: int = 5
    """Distinct days on which the habit must have happened."""
    min_confidence: float = 0.5
    """Minimum Wilson lower bound of the habit's success rate (0..1)."""
    confidence_z: float = 1.645
    """z of the Wilson bound: 1.645 is a one-sided 95 % bound."""
    routine_z: float = 1.0
    """z of the Wilson bound on a routine's share of eligible days (one-sided 84 %). Four weeks hold
    only 8 weekend days: at 1.645 a routine kept on 6 of them (bound 0.46) would be lost, at 1.0 it
    passes (0.57) and 5 of 8 does not (0.45). Noise is kept out by the time lift and spread."""

    # --- time of day and sun
    time_cluster_radius_min: float = 40.0
    """Minutes either side of a cluster's centre that still belong to it."""
    min_time_lift: float = 3.0
    """Changes per minute inside a time cluster over changes per minute in the hours around it
    (``time_context_min``): entities toggled all day long have no such peak."""
    time_context_min: float = 180.0
    """Minutes either side of a cluster's centre that form its background for ``min_time_lift``."""
    max_events_per_day: float = 1.5
    """A routine happens about once a day: clusters averaging more changes per day than this are an
    entity used all the time, not a routine."""
    min_routine_share: float = 0.2
    """A routine accounts for at least this share of its entity's changes to that state: a peak
    among changes made all day long, many times a day, is chance, not a habit."""
    max_time_deviation_min: float = 15.0
    """Median distance (minutes) of a cluster's changes from its centre; changes spread evenly over
    the cluster's window (median ~radius/2) are clutter, not a routine."""
    day_split_ratio: float = 0.6
    """If the weekday and weekend day-hit rates are within this ratio of each other the habit is
    'every day'; otherwise it is split into weekdays or weekends."""
    time_round_min: int = 5
    """Suggested clock times are rounded to this many minutes."""
    sun_max_offset_min: float = 120.0
    """Largest offset from sunrise/sunset (minutes) a sun-relative habit may have."""
    sun_spread_ratio: float = 0.75
    """A habit is sun-relative only if its spread around the sun event is below this fraction of its
    spread in clock time (near the solstices both are alike and clock time wins)."""

    # --- trigger-action rules A -> B, with conditions
    sequence_window_s: float = 300.0
    """B must follow A within this many seconds."""
    min_sequence_lift: float = 3.0
    """Coverage of B by A (share of B's changes with A in the window before) over the share of the
    whole span that A's windows cover: a trigger that fires all the time precedes everything."""
    min_coverage: float = 0.5
    """Minimum Wilson lower bound of a rule's coverage: the share of the action's changes that the
    trigger (with the rule's conditions true) preceded."""
    max_conditions: int = 2
    """Most conditions a rule may carry."""
    min_condition_gain: float = 0.05
    """A condition is added only when it raises the rule's score (lower bound of precision times
    lower bound of coverage) by at least this much: fewer conditions are preferred."""
    condition_for_min: tuple[int, ...] = (5, 15, 30, 60)
    """Candidate durations (minutes) for 'off for at least N min' and 'quiet for N min'."""

    # --- groups and presence
    group_window_s: float = 60.0
    """Entities set to the same state within this many seconds of the first are set together."""
    group_min_share: float = 0.6
    """Two entities form a group when each is set together with the other on at least this share
    of its changes to that state."""
    presence_debounce_s: float = 300.0
    """A person or tracker that is back in its previous state within this many seconds did not
    really leave or arrive (phone trackers flap)."""
    timing_weight_per_min: float = 0.01
    """Of two patterns that explain the same changes, each minute by which one typically misses the
    moment the person acted (a routine's spread, a rule's delay) counts as this share of the
    changes explained."""
    min_duplicate_overlap: float = 0.5
    """Two patterns acting on the same target that explain this share of the same changes (of the
    smaller) are one habit: only the one that explains more of the target's changes is kept."""

    # --- durations (auto-off)
    min_duration_min: float = 1.0
    """Shorter on-periods are ignored (flicks, retries)."""
    max_duration_min: float = 240.0
    """Longer on-periods are not auto-off material."""
    duration_tolerance: float = 0.3
    """An on-period is 'consistent' within this fraction of the typical duration ..."""
    duration_tolerance_min: float = 3.0
    """... or within this many minutes, whichever is larger."""

    # --- dedup against existing automations
    existing_time_tolerance_min: float = 60.0
    """An existing time-triggered automation on the same entity within this many minutes covers a
    time-of-day habit."""

    def __post_init__(self) -> None:
        """Reject values the detectors cannot work with, naming the option."""
        checks = {
            "window_days": self.window_days >= 1,
            "min_support_days": self.min_support_days >= 1,
            "min_confidence": 0.0 <= self.min_confidence <= 1.0,
            "confidence_z": self.confidence_z >= 0.0,
            "routine_z": self.routine_z >= 0.0,
            "time_cluster_radius_min": 1.0 <= self.time_cluster_radius_min <= 360.0,
            "time_context_min": self.time_context_min > self.time_cluster_radius_min,
            "max_events_per_day": self.max_events_per_day >= 1.0,
            "min_routine_share": 0.0 <= self.min_routine_share <= 1.0,
            "day_split_ratio": 0.0 <= self.day_split_ratio <= 1.0,
            "time_round_min": 1 <= self.time_round_min <= 60,
            "sequence_window_s": self.sequence_window_s > 0.0,
            "min_coverage": 0.0 <= self.min_coverage <= 1.0,
            "max_conditions": 0 <= self.max_conditions <= 3,
            "condition_for_min": all(n > 0 for n in self.condition_for_min),
            "group_window_s": self.group_window_s > 0.0,
            "group_min_share": 0.0 < self.group_min_share <= 1.0,
            "presence_debounce_s": self.presence_debounce_s >= 0.0,
            "min_duplicate_overlap": 0.0 < self.min_duplicate_overlap <= 1.0,
            "timing_weight_per_min": self.timing_weight_per_min >= 0.0,
            "min_duration_min": 0.0 <= self.min_duration_min < self.max_duration_min,
            "duration_tolerance": self.duration_tolerance >= 0.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid mining options: {', '.join(bad)}")
