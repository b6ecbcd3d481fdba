"""What the integration tells the add-on about a pattern besides its text (API 1.1 ``context``).

The add-on's classifier reads it for category priors (a lock is security, an auto-off is energy)
and for the priority (how often, how consistently, what is left on or unlocked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .patterns import Pattern
from .patterns.presence import is_presence

_TRIGGERS = {"time_of_day": "time", "sun": "sun", "duration": "state"}


def pattern_context(pattern: Pattern, device_classes: Mapping[str, str]) -> dict[str, Any]:
    """The ``context`` object of one pattern for ``/v1/suggest``."""
    targets = pattern.targets
    trigger_entity = str(pattern.trigger.get("entity_id", "")) if pattern.kind == "sequence" else ""
    if pattern.kind == "sequence":
        trigger = "presence" if trigger_entity == "zone.home" or is_presence(trigger_entity) else "state"
    else:
        trigger = _TRIGGERS[pattern.kind]
    involved = [trigger_entity, *targets] if trigger_entity else list(targets)
    evidence = pattern.evidence
    context: dict[str, Any] = {
        "kind": pattern.kind,
        "trigger": trigger,
        "domains": sorted({target.partition(".")[0] for target in targets}),
        "action": str(pattern.action["state"]),
        "targets": len(targets),
        "evidence": {
            "occurrences": evidence.occurrences,
            "support_days": evidence.support_days,
            "eligible_days": evidence.eligible_days,
            **({"precision": round(evidence.precision, 4)} if evidence.precision is not None else {}),
        },
    }
    if trigger_entity:
        context["trigger_domains"] = [trigger_entity.partition(".")[0]]
    if classes := sorted({device_classes[e] for e in involved if e in device_classes}):
        context["device_classes"] = classes
    return context
