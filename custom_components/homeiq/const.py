"""Constants for the HomeIQ integration."""

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "homeiq"
LOGGER = logging.getLogger(__package__)

DEFAULT_PORT: Final = 8765

# Options (entry.options); defaults live here, in one place.
CONF_WINDOW_DAYS: Final = "window_days"
CONF_MIN_SUPPORT_DAYS: Final = "min_support_days"
CONF_MIN_CONFIDENCE: Final = "min_confidence"
CONF_EXCLUDED_ENTITIES: Final = "excluded_entities"
CONF_EXCLUDED_DOMAINS: Final = "excluded_domains"
CONF_EXCLUDED_AREAS: Final = "excluded_areas"
CONF_EXCLUDED_LABELS: Final = "excluded_labels"
CONF_ANALYSIS_TIME: Final = "analysis_time"
CONF_MAX_SUGGESTIONS: Final = "max_suggestions"
CONF_FOCUS_QUERY: Final = "focus_query"
CONF_NOTIFY_HIGH_PRIORITY: Final = "notify_high_priority"

DEFAULT_WINDOW_DAYS: Final = 28
DEFAULT_MIN_SUPPORT_DAYS: Final = 5
DEFAULT_MIN_CONFIDENCE: Final = 0.5
DEFAULT_ANALYSIS_TIME: Final = "03:00:00"
DEFAULT_MAX_SUGGESTIONS: Final = 20
DEFAULT_NOTIFY_HIGH_PRIORITY: Final = True

MAX_WINDOW_DAYS: Final = 90

# Domains whose state changes can be habits or their triggers. Numeric sensors are left out on
# purpose: they change every few seconds and would swamp the per-day store.
# The add-on's slug under the Supervisor (from discovery): the device links to its info page.
CONF_ADDON_SLUG: Final = "addon_slug"

HABIT_DOMAINS: Final = frozenset(
    {
        "alarm_control_panel",
        "binary_sensor",
        "climate",
        "cover",
        "device_tracker",
        "fan",
        "humidifier",
        "input_boolean",
        "light",
        "lock",
        "media_player",
        "person",
        "switch",
        "vacuum",
        "water_heater",
    }
)
# Automation and script records are never habits, but the pattern engine needs their updates
# (attribute-only ones too: `last_triggered`) because their context ids mark the changes they caused.
ORIGIN_DOMAINS: Final = frozenset({"automation", "script"})
TRACKED_DOMAINS: Final = HABIT_DOMAINS | ORIGIN_DOMAINS

# How often /health is polled, and the ceiling of the back-off while the add-on is unreachable.
HEALTH_INTERVAL: Final = timedelta(minutes=5)
MAX_HEALTH_BACKOFF: Final = timedelta(minutes=60)
UNREACHABLE_REPAIR_AFTER: Final = timedelta(days=1)

# Suggestion categories and priorities as classified by the add-on.
CATEGORIES: Final = ("energy", "security", "comfort", "convenience")
PRIORITIES: Final = ("high", "medium", "low")

ISSUE_ADDON_UNREACHABLE: Final = "addon_unreachable"
ISSUE_MODELS_FAILED: Final = "models_failed"

NOTIFICATION_ID: Final = "homeiq_high_priority"


def addon_info_url(slug: str) -> str:
    """The add-on's info page in the Home Assistant UI (under the Supervisor)."""
    return f"homeassistant://hassio/addon/{slug}/info"
