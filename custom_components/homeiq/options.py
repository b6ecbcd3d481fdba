"""The options flow's values as one typed record, with defaults filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

from homeassistant.util import dt as dt_util

from .const import (
    CONF_ANALYSIS_TIME,
    CONF_EXCLUDED_AREAS,
    CONF_EXCLUDED_DOMAINS,
    CONF_EXCLUDED_ENTITIES,
    CONF_EXCLUDED_LABELS,
    CONF_FOCUS_QUERY,
    CONF_MAX_SUGGESTIONS,
    CONF_MIN_CONFIDENCE,
    CONF_MIN_SUPPORT_DAYS,
    CONF_NOTIFY_HIGH_PRIORITY,
    CONF_WINDOW_DAYS,
    DEFAULT_ANALYSIS_TIME,
    DEFAULT_MAX_SUGGESTIONS,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_SUPPORT_DAYS,
    DEFAULT_NOTIFY_HIGH_PRIORITY,
    DEFAULT_WINDOW_DAYS,
)


@dataclass(frozen=True, slots=True)
class EntityExclusions:
    """What the user left out of the analysis."""

    entities: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    areas: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class HomeIQOptions:
    """The options flow's values, with defaults filled in."""

    window_days: int
    min_support_days: int
    min_confidence: float
    exclusions: EntityExclusions
    analysis_time: time
    max_suggestions: int
    focus_query: str
    notify_high_priority: bool

    @classmethod
    def from_entry(cls, options: Mapping[str, Any]) -> HomeIQOptions:
        """Read `entry.options`."""
        analysis_time = dt_util.parse_time(str(options.get(CONF_ANALYSIS_TIME, DEFAULT_ANALYSIS_TIME)))
        return cls(
            window_days=int(options.get(CONF_WINDOW_DAYS, DEFAULT_WINDOW_DAYS)),
            min_support_days=int(options.get(CONF_MIN_SUPPORT_DAYS, DEFAULT_MIN_SUPPORT_DAYS)),
            min_confidence=float(options.get(CONF_MIN_CONFIDENCE, DEFAULT_MIN_CONFIDENCE)),
            exclusions=EntityExclusions(
                entities=frozenset(options.get(CONF_EXCLUDED_ENTITIES, ())),
                domains=frozenset(options.get(CONF_EXCLUDED_DOMAINS, ())),
                areas=frozenset(options.get(CONF_EXCLUDED_AREAS, ())),
                labels=frozenset(options.get(CONF_EXCLUDED_LABELS, ())),
            ),
            analysis_time=analysis_time or time(3, 0),
            max_suggestions=int(options.get(CONF_MAX_SUGGESTIONS, DEFAULT_MAX_SUGGESTIONS)),
            focus_query=str(options.get(CONF_FOCUS_QUERY, "") or "").strip(),
            notify_high_priority=bool(options.get(CONF_NOTIFY_HIGH_PRIORITY, DEFAULT_NOTIFY_HIGH_PRIORITY)),
        )
