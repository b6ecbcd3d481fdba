"""Which service call brings an entity to a state: the action of a suggested automation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_TOGGLE_DOMAINS = frozenset({"light", "switch", "fan", "input_boolean", "siren", "humidifier"})
_HVAC_MODES = frozenset({"off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"})

_BY_DOMAIN_STATE: dict[str, dict[str, str]] = {
    "lock": {"locked": "lock", "unlocked": "unlock", "open": "open"},
    "cover": {"open": "open_cover", "closed": "close_cover"},
    "valve": {"open": "open_valve", "closed": "close_valve"},
    "media_player": {
        "playing": "media_play",
        "paused": "media_pause",
        "off": "turn_off",
        "on": "turn_on",
        "idle": "media_stop",
    },
    "vacuum": {"cleaning": "start", "docked": "return_to_base"},
    "lawn_mower": {"mowing": "start_mowing", "docked": "dock"},
}


@dataclass(frozen=True)
class ServiceCall:
    """A service call in HA's current action syntax (``action``, ``target``, ``data``).

    ``entity_id`` is one entity id or, for a call on several targets, a list of them.
    """

    action: str
    entity_id: str | list[str]
    data: dict[str, Any] = field(default_factory=dict)

    def as_action(self) -> dict[str, Any]:
        """The call as one entry of an automation's ``actions`` list."""
        target = self.entity_id if isinstance(self.entity_id, str) else list(self.entity_id)
        out: dict[str, Any] = {"action": self.action, "target": {"entity_id": target}}
        if self.data:
            out["data"] = dict(self.data)
        return out


def service_calls(targets: tuple[str, ...], state: str) -> list[ServiceCall] | None:
    """The calls that set every target to ``state``: one per service, naming all of its targets
    (lights and switches of a group get one call each); None when some target has no service."""
    calls: dict[tuple[str, str], ServiceCall] = {}
    for target in targets:
        call = service_for(target, state)
        if call is None:
            return None
        key = (call.action, repr(sorted(call.data.items())))
        if key in calls:
            previous = calls[key]
            names = [previous.entity_id] if isinstance(previous.entity_id, str) else previous.entity_id
            calls[key] = ServiceCall(call.action, [*names, target], call.data)
        else:
            calls[key] = call
    return list(calls.values())


def service_for(entity_id: str, state: str) -> ServiceCall | None:
    """The service call that sets ``entity_id`` to ``state``; None when no service does that."""
    domain = entity_id.partition(".")[0]
    if domain in _TOGGLE_DOMAINS:
        if state in ("on", "off"):
            return ServiceCall(f"{domain}.turn_{state}", entity_id)
        return None
    if domain == "climate":
        if state in _HVAC_MODES:
            return ServiceCall("climate.set_hvac_mode", entity_id, {"hvac_mode": state})
        return None
    if domain in ("input_select", "select"):
        return ServiceCall(f"{domain}.select_option", entity_id, {"option": state})
    service = _BY_DOMAIN_STATE.get(domain, {}).get(state)
    return ServiceCall(f"{domain}.{service}", entity_id) if service else None


def is_actionable(entity_id: str, state: str) -> bool:
    """Whether a suggested automation could bring ``entity_id`` to ``state``."""
    return service_for(entity_id, state) is not None


def off_state(entity_id: str, on_state: str) -> str | None:
    """The state that ends an 'on'-like state, for auto-off suggestions (None if there is none)."""
    domain = entity_id.partition(".")[0]
    if domain in _TOGGLE_DOMAINS and on_state == "on":
        return "off"
    if domain == "media_player" and on_state in ("on", "playing"):
        return "off"
    return None
