"""HomeIQ's pattern engine: habits from state history, as suggested automations.

Pure Python (numpy allowed) with no Home Assistant imports, so it runs and is tested on its own.

    patterns = mine_patterns(events, HomeContext("Europe/Amsterdam", 52.37, 4.90),
                             existing_automations=configs, options=MiningOptions(), now=now)
    [p.as_dict() for p in patterns]   # the JSON objects of the pattern contract

Feeding it: pass every state change of the window, in any order, including the rows of
``automation.*`` and ``script.*`` entities (also attribute-only ones such as ``last_triggered``
updates). A time- or sun-triggered automation runs with a fresh context that has neither
``parent_id`` nor ``user_id``; only its own entity's row with the same context id tells its effects
from a physical switch. Changes with a ``parent_id`` are automated regardless.

Detectors: ``time_of_day`` (clock time, every day / weekdays / weekends), ``sun`` (relative to
sunrise/sunset, when a location is given), ``sequence`` (A then B within minutes, with lift) and
``duration`` (switched off by hand a consistent time after going on). Pattern ids are stable for
the same habit across runs (see ``render.py``).
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
