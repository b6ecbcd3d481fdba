"""HomeIQ's pattern engine: habits from state history, as suggested automations.

Pure Python (numpy allowed) with no Home Assistant imports, so it runs and is tested on its own.
"""

from __future__ import annotations

from .events import EventFormatError, read_events_jsonl, state_change_from_dict, state_change_to_dict
from .mine import mine_patterns
from .model import HomeContext, Pattern, StateChange
from .options import DEFAULT_EXCLUDED_DOMAINS, MiningOptions

__all__ = [
    "DEFAULT_EXCLUDED_DOMAINS",
    "EventFormatError",
    "HomeContext",
    "MiningOptions",
    "Pattern",
    "StateChange",
    "mine_patterns",
    "read_events_jsonl",
    "state_change_from_dict",
    "state_change_to_dict",
]
