"""A pattern's structured context: read from the wording when not sent, rendered for prompts,
and turned into category priors.

The integration sends what it knows (domains, action, trigger, evidence); older clients send
only the text, and then :func:`context_from_text` reads the same fields from the wording, so
the priors and the priority rules see one kind of input either way.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Final

import numpy as np

from .types import CATEGORIES, Evidence, FloatArray, PatternContext

# States and services that stop, lower or limit something: the energy side of an action.
OFF_ACTIONS: Final = frozenset({"off", "idle", "paused", "eco", "standby", "away", "stop", "standby_off"})
LOCKING_ACTIONS: Final = frozenset({"locked", "armed_away", "armed_home", "armed_night", "armed_vacation"})
HEATING_ACTIONS: Final = frozenset({"heat", "cool", "heat_cool", "auto", "dry", "on", "comfort"})
GUARDED_COVERS: Final = frozenset({"garage", "garage_door", "gate", "door"})
HAZARD_CLASSES: Final = frozenset(
    {"smoke", "gas", "moisture", "carbon_monoxide", "safety", "tamper", "problem"}
)
SECURITY_DOMAINS: Final = frozenset({"lock", "alarm_control_panel", "siren", "camera"})

# Log-prior contributions, in CATEGORIES order (energy, security, comfort, convenience). Each is
# domain knowledge, not fitted: the classifier fits one weight for their sum on the development set.
_SECURITY: Final = (0.0, 3.0, 0.0, 0.0)
_SAVING: Final = (2.0, 0.0, 0.0, 0.0)
_PLEASANT: Final = (0.0, 0.0, 2.0, 0.0)
_ROUTINE: Final = (0.0, 0.0, 0.0, 1.5)
_HAZARD: Final = (0.0, 2.0, 0.0, 0.0)
_AUTO_OFF: Final = (1.0, 0.0, 0.0, 0.0)

# ---- reading the fields from the wording ---------------------------------------------------

_DOMAIN_WORDS: Final[tuple[tuple[str, str], ...]] = (
    (r"\b(un)?lock(s|ed)?\b", "lock"),
    (r"\b(alarm panel|burglar alarm|alarm system|house alarm|disarm\w*|arm(ed|s)?)\b", "alarm_control_panel"),
    (r"\bsiren\b", "siren"),
    (r"\b(camera|cameras|record\w*)\b", "camera"),
    (r"\b(lights?|lamps?|floodlights?|lighting|bulbs?|led strip)\b", "light"),
    (r"\b(blinds?|curtains?|shades?|shutters?|awning|skylight|garage door|gate|sun shade)\b", "cover"),
    (
        r"\b(thermostat|heating|radiators?|air condition\w*|ac|heat pump|floor heating|temperature)\b",
        "climate",
    ),
    (r"\b(boiler|water heater|pool heater)\b", "water_heater"),
    (r"\b(fan|ventilation|purifier)\b", "fan"),
    (r"\b(dehumidifier|humidifier)\b", "humidifier"),
    (r"\b(tv|television|speaker|radio|music|playlist|soundbar|receiver|home cinema)\b", "media_player"),
    (r"\b(vacuum\w*)\b", "vacuum"),
    (r"\b(mower)\b", "lawn_mower"),
    (r"\b(valve|water main)\b", "valve"),
    (r"\b(notify|notification|remind|tell me|let me know|warn|alert|announce)\b", "notify"),
    (
        r"\b(plug|coffee \w+|kettle|pump|charger|heater|power strip|standby|machine|blanket|towel \w+)\b",
        "switch",
    ),
)
_CLASS_WORDS: Final[tuple[tuple[str, str], ...]] = (
    (r"\bgarage\b", "garage"),
    (r"\bgate\b", "gate"),
    (r"\b(blinds?|shades?|shutters?)\b", "blind"),
    (r"\bcurtains?\b", "curtain"),
    (r"\bwindows?\b", "window"),
    (r"\bdoors?\b", "door"),
    (r"\b(motion|walks? in|someone approaches)\b", "motion"),
    (r"\bhumidity\b", "humidity"),
    (r"\bsmoke\b", "smoke"),
    (r"\b(leak|flood\w*|water is detected|gets wet)\b", "moisture"),
    (r"\b(gas)\b", "gas"),
    (r"\bcarbon monoxide\b", "carbon_monoxide"),
)
_ACTION_WORDS: Final[tuple[tuple[str, str], ...]] = (
    (r"\b(is locked|lock|locks)\b", "locked"),
    (r"\b(arm\w*)\b(?<!disarm)", "armed_away"),
    (r"\b(eco|set back|lower the (heating|thermostat|temperature))\b", "eco"),
    (r"\b(turns? off|switch(es)? off|off|power down|shut off|cut|kill|stop\w*|pause\w*|sleep)\b", "off"),
    (r"\b(closes?|close|pull down|lower)\b", "closed"),
    (r"\b(opens?|open|raise)\b", "open"),
    (r"\b(heat|warm\w*|preheat)\b", "heat"),
    (r"\b(cool\w*)\b", "cool"),
    (r"\b(starts? playing|play\w*)\b", "playing"),
    (r"\b(turns? on|switch(es)? on|start\w*|light up|run)\b", "on"),
)
_KIND_WORDS: Final[tuple[tuple[str, str], ...]] = (
    (
        r"\bby hand about \d+ (min|s) after it\b|\bafter (\d+|an?|one|two|half an?) (min\w*|hours?)\b",
        "duration",
    ),
    (r"\b(sunset|sunrise|dusk|dawn|gets dark|sun sets|sun comes up)\b", "sun"),
    (
        r"\b(leaves?|left|leave|away|arrives?|come home|comes home|nobody|everyone|last person"
        r"|holiday|vacation|travelling)\b",
        "presence",
    ),
    (r"\b(after|when|whenever|once)\b", "sequence"),
    (r"\b(around|at) \d{1,2}:\d\d\b|\b(at night|midnight|morning|evening|bedtime)\b", "time_of_day"),
)
_KIND_TRIGGERS: Final = {"duration": "state", "sequence": "state", "sun": "sun", "presence": "presence"}
_SEEN_ON = re.compile(r"\b(\d+) of the last (\d+) days\b")


def _first(table: tuple[tuple[str, str], ...], text: str) -> str | None:
    """The value of the first pattern in table order that occurs."""
    for pattern, value in table:
        if re.search(pattern, text):
            return value
    return None


def _earliest(table: tuple[tuple[str, str], ...], text: str) -> str | None:
    """The value of the match nearest the start (table order among equals): the action target and
    its verb come before the trigger ("Hallway light turns on ... after Front door opens")."""
    found = [
        (m.start(), i, value) for i, (pattern, value) in enumerate(table) if (m := re.search(pattern, text))
    ]
    return min(found)[2] if found else None


def context_from_text(text: str) -> PatternContext:
    """The context fields that the wording gives away ("Front door lock is locked" → lock, locked)."""
    lower = text.lower()
    domain = _earliest(_DOMAIN_WORDS, lower)
    kind = _first(_KIND_WORDS, lower)
    classes = tuple(dict.fromkeys(value for pattern, value in _CLASS_WORDS if re.search(pattern, lower)))
    seen = _SEEN_ON.search(lower)
    evidence = Evidence(support_days=int(seen[1]), eligible_days=int(seen[2])) if seen else None
    return PatternContext(
        kind=kind,
        trigger=_KIND_TRIGGERS.get(kind or "", "time" if kind else None),
        domains=(domain,) if domain else (),
        device_classes=classes,
        action=_earliest(_ACTION_WORDS, lower),
        evidence=evidence,
    )


def merged_context(text: str, context: PatternContext | None) -> PatternContext:
    """The sent context with what it leaves out read from the wording (all of it when None)."""
    worded = context_from_text(text)
    if context is None:
        return worded
    return replace(
        context,
        kind=context.kind or worded.kind,
        trigger=context.trigger or worded.trigger,
        domains=context.domains or worded.domains,
        device_classes=context.device_classes or worded.device_classes,
        action=context.action or worded.action,
        evidence=context.evidence or worded.evidence,
    )


# ---- rendering for a prompt ----------------------------------------------------------------


def render_context(context: PatternContext) -> str:
    """One short line for a language model's prompt ("kind: sequence; targets: lock (locked); ...")."""
    parts: list[str] = []
    if context.kind:
        parts.append(f"kind: {context.kind.replace('_', ' ')}")
    if context.trigger:
        trigger = context.trigger
        if context.trigger_domains:
            trigger += f" of {', '.join(context.trigger_domains)}"
        parts.append(f"trigger: {trigger}")
    if context.domains:
        target = ", ".join(context.domains)
        parts.append(f"acts on: {target}" + (f" ({context.action})" if context.action else ""))
    elif context.action:
        parts.append(f"action: {context.action}")
    if context.device_classes:
        parts.append(f"devices: {', '.join(context.device_classes)}")
    evidence = context.evidence
    if evidence is not None and evidence.support_days is not None:
        seen = f"seen on {evidence.support_days}"
        parts.append(seen + (f" of {evidence.eligible_days} days" if evidence.eligible_days else " days"))
    return "; ".join(parts)


# ---- category priors -----------------------------------------------------------------------


def _domain_prior(  # noqa: PLR0911 - one answer per kind of device
    domain: str, action: str | None, classes: frozenset[str]
) -> tuple[float, ...]:
    switching_off = action in OFF_ACTIONS
    if domain in SECURITY_DOMAINS:
        return _SECURITY
    if domain == "cover":
        if classes & GUARDED_COVERS:
            return _SECURITY if action == "closed" else _ROUTINE
        return _PLEASANT
    if domain in ("climate", "water_heater"):
        return _SAVING if switching_off or domain == "water_heater" else _PLEASANT
    if domain in ("fan", "humidifier"):
        return _SAVING if switching_off else _PLEASANT
    if domain in ("light", "switch", "media_player"):
        if switching_off:
            return _SAVING
        return _PLEASANT if action == "playing" else _ROUTINE
    if domain in ("vacuum", "lawn_mower"):
        return _ROUTINE
    return (0.0, 0.0, 0.0, 0.0)


def category_prior(context: PatternContext) -> FloatArray:
    """Log-prior contributions per category (CATEGORIES order) from the context's fields."""
    prior = np.zeros(len(CATEGORIES), dtype=np.float32)
    classes = frozenset(context.device_classes)
    for domain in dict.fromkeys(context.domains):
        prior += np.asarray(_domain_prior(domain, context.action, classes), dtype=np.float32)
    if context.action in LOCKING_ACTIONS:
        prior += np.asarray(_SECURITY, dtype=np.float32)
    if classes & HAZARD_CLASSES:
        prior += np.asarray(_HAZARD, dtype=np.float32)
    if context.kind == "duration" and (context.action in OFF_ACTIONS or context.action is None):
        prior += np.asarray(_AUTO_OFF, dtype=np.float32)
    return prior
