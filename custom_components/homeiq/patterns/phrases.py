"""How the suggestion texts name things: entities, groups, states, sensor events, clock times and
sun offsets. No statistics and no automation configs here (see ``render.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .groups import targets_of
from .presence import HOUSEHOLD

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
WEEKEND = ("sat", "sun")
DAY_SET_WEEKDAYS: dict[str, tuple[str, ...]] = {"weekdays": WEEKDAYS, "weekend": WEEKEND}
DAY_SET_TEXT = {"daily": "every day", "weekdays": "on weekdays", "weekend": "on weekends"}

# Domains whose noun reads well after the object name ("Bedroom light", "Front door lock").
_DOMAIN_NOUNS = {"light": "light", "fan": "fan", "lock": "lock", "climate": "thermostat", "siren": "siren"}

_STATE_VERBS = {
    "on": "turns on",
    "off": "turns off",
    "locked": "is locked",
    "unlocked": "is unlocked",
    "open": "opens",
    "closed": "closes",
    "playing": "starts playing",
    "paused": "is paused",
    "idle": "stops",
    "home": "arrives home",
    "not_home": "leaves home",
    "cleaning": "starts cleaning",
    "docked": "docks",
}


_PLURAL_VERBS = {
    "turns": "turn",
    "is": "are",
    "opens": "open",
    "closes": "close",
    "starts": "start",
    "stops": "stop",
    "docks": "dock",
    "changes": "change",
    "arrives": "arrive",
    "leaves": "leave",
}
_PAST_VERBS = {
    "turn": "turned",
    "open": "opened",
    "close": "closed",
    "start": "started",
    "stop": "stopped",
    "dock": "docked",
    "change": "changed",
    "arrive": "arrived",
    "leave": "left",
    "turns": "turned",
    "detects": "detected",
    "clears": "cleared",
    "is": "was",
    "opens": "opened",
    "closes": "closed",
    "starts": "started",
    "stops": "stopped",
    "docks": "docked",
    "changes": "changed",
    "arrives": "arrived",
    "leaves": "left",
}
_NAMED_GROUP_MAX = 3


@dataclass(frozen=True)
class Words:
    """What the texts name things by: friendly names, and device classes (a door sensor "opens")."""

    names: Mapping[str, str] = field(default_factory=dict)
    device_classes: Mapping[str, str] = field(default_factory=dict)


def entity_name(entity_id: str, names: Mapping[str, str]) -> str:
    """The friendly name if known, else one made from the entity id ("light.bedroom" -> "Bedroom
    light"); a group reads "Desk lamp, Bloom and 5 more lights"."""
    targets = targets_of(entity_id)
    if len(targets) > 1:
        return _group_name(targets, names)
    if entity_id in names:
        return names[entity_id]
    if entity_id == HOUSEHOLD:
        return "Everyone"
    domain, _, object_id = entity_id.partition(".")
    words = object_id.replace("_", " ").strip() or domain
    noun = _DOMAIN_NOUNS.get(domain)
    if noun and noun not in words.split():
        words = f"{words} {noun}"
    return words[:1].upper() + words[1:]


def _group_name(targets: tuple[str, ...], names: Mapping[str, str]) -> str:
    named = [entity_name(t, names) for t in targets]
    if len(named) <= _NAMED_GROUP_MAX:
        return f"{', '.join(named[:-1])} and {named[-1]}"
    domains = {t.partition(".")[0] for t in targets}
    noun = f"{_DOMAIN_NOUNS.get(domains.pop(), 'device')}s" if len(domains) == 1 else "devices"
    return f"{named[0]}, {named[1]} and {len(named) - 2} more {noun}"


_OPENINGS = frozenset({"door", "garage_door", "opening", "window"})
_MOTIONS = frozenset({"motion", "occupancy", "presence", "moving"})


def sensor_kind(entity_id: str, device_class: str | None) -> str | None:
    """'opening' or 'motion' for a binary sensor of that kind (by its device class, or failing
    that by the words of its id), else None."""
    if not entity_id.startswith("binary_sensor."):
        return None
    words = set(entity_id.partition(".")[2].split("_"))
    if device_class in _OPENINGS or (device_class is None and words & _OPENINGS):
        return "opening"
    if device_class in _MOTIONS or (device_class is None and words & (_MOTIONS | {"pir"})):
        return "motion"
    return None


_SENSOR_PHRASES = {
    ("opening", "on"): "opens",
    ("opening", "off"): "closes",
    ("motion", "on"): "detects motion",
    ("motion", "off"): "clears",
}


def state_phrase(entity_id: str, state: str, device_class: str | None = None) -> str:
    """What reaching ``state`` reads like ("turns on", "is locked", "is set to heat", for a door
    sensor "opens"); a group's phrase is plural ("turn on")."""
    if entity_id == HOUSEHOLD:
        return "the first person arrives home" if state == "home" else "the last person leaves home"
    if (kind := sensor_kind(entity_id, device_class)) and (kind, state) in _SENSOR_PHRASES:
        return _SENSOR_PHRASES[kind, state]
    targets = targets_of(entity_id)
    first = targets[0]
    if first.startswith("climate."):
        phrase = f"is set to {state.replace('_', ' ')}"
    elif first.startswith(("input_select.", "select.")):
        phrase = f"is set to {state}"
    else:
        phrase = _STATE_VERBS.get(state, f"changes to {state}")
    if len(targets) > 1:
        verb, _, rest = phrase.partition(" ")
        phrase = f"{_PLURAL_VERBS.get(verb, verb)} {rest}".strip()
    return phrase


def past_phrase(entity_id: str, state: str, device_class: str | None = None) -> str:
    """``state_phrase`` in the past tense ("turned on", "was locked", "were turned on")."""
    if entity_id == HOUSEHOLD:
        return "the first person arrived home" if state == "home" else "the last person left home"
    verb, _, rest = state_phrase(entity_id, state, device_class).partition(" ")
    past = "were" if verb == "are" else _PAST_VERBS.get(verb, verb)
    return f"{past} {rest}".strip()


def event_text(entity_id: str, state: str, words: Words) -> str:
    """ "Front door opens", or for the household "the last person leaves home"."""
    phrase = state_phrase(entity_id, state, words.device_classes.get(entity_id))
    if entity_id == HOUSEHOLD:
        return phrase
    return f"{entity_name(entity_id, words.names)} {phrase}"


def past_event_text(entity_id: str, state: str, words: Words, *, before: bool = False) -> str:
    """ "Front door opened"; with ``before``, "Front door had opened"."""
    phrase = past_phrase(entity_id, state, words.device_classes.get(entity_id))
    if before:
        verb, _, rest = phrase.partition(" ")
        phrase = f"had been {rest}" if verb in ("was", "were") else f"had {phrase}"
        if entity_id == HOUSEHOLD:
            phrase = phrase.replace("had the ", "the ", 1).replace(" person ", " person had ", 1)
            return phrase
    if entity_id == HOUSEHOLD:
        return past_phrase(entity_id, state)
    return f"{entity_name(entity_id, words.names)} {phrase}"


def clock_text(minute: float) -> str:
    """HH:MM of a minute of the day."""
    total = round(minute) % 1440
    return f"{total // 60:02d}:{total % 60:02d}"


def offset_text(offset_min: int, event: str) -> str:
    """'at sunset', '20 min before sunrise'."""
    if offset_min == 0:
        return f"at {event}"
    return f"{abs(offset_min)} min {'before' if offset_min < 0 else 'after'} {event}"


def offset_duration(offset_min: int) -> str:
    """A signed HH:MM:SS offset for a sun trigger."""
    sign = "-" if offset_min < 0 else ""
    minutes = abs(offset_min)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}:00"
