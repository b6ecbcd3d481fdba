"""Pattern-like texts: calibration data for static INT8 quantization and benchmark input.

They imitate what the integration's pattern miner renders ("Turn on Kitchen light at
07:00 on weekdays"), so the activation ranges that quantization calibrates on are the
ones seen in production.
"""

from __future__ import annotations

import itertools
import random

_DEVICES = (
    ("light", "Kitchen light"),
    ("light", "Living room lamp"),
    ("light", "Hallway light"),
    ("switch", "Coffee maker"),
    ("switch", "Garden irrigation"),
    ("climate", "Bedroom thermostat"),
    ("climate", "Living room heating"),
    ("cover", "Bedroom blinds"),
    ("cover", "Garage door"),
    ("lock", "Front door lock"),
    ("media_player", "Living room TV"),
    ("fan", "Bathroom fan"),
    ("switch", "Washing machine plug"),
    ("light", "Porch light"),
    ("alarm_control_panel", "House alarm"),
)
_ACTIONS = {
    "light": ("Turn on", "Turn off", "Dim to 30 % "),
    "switch": ("Turn on", "Turn off"),
    "climate": ("Set to 21 °C", "Set to 17 °C", "Turn off"),
    "cover": ("Open", "Close"),
    "lock": ("Lock", "Unlock"),
    "media_player": ("Turn off", "Pause"),
    "fan": ("Turn on", "Turn off"),
    "alarm_control_panel": ("Arm away", "Disarm", "Arm night"),
}
_WHEN = (
    "at 07:00 on weekdays",
    "at 22:30 every day",
    "at sunset",
    "30 minutes after sunrise",
    "when everyone has left home",
    "when the first person arrives home",
    "when the Hallway motion sensor detects motion after 23:00",
    "after it has been on for 2 hours",
    "when the bedroom window is opened",
    "at 06:45 on Monday, Tuesday and Friday",
    "when the outdoor temperature drops below 5 °C",
    "10 minutes after the Front door opens",
)
_EXTRA = (
    "",
    " (seen on 24 of the last 30 days)",
    " — you do this manually almost every day",
    " because it usually stays on while nobody is in the room",
)


def pattern_texts(count: int = 256, seed: int = 7) -> list[str]:
    """Return ``count`` varied, deterministic pattern texts of roughly 8 to 30 tokens."""
    combos = [
        f"{action} {name} {when}{extra}"
        for (domain, name), when, extra in itertools.product(_DEVICES, _WHEN, _EXTRA)
        for action in _ACTIONS[domain]
    ]
    rng = random.Random(seed)  # noqa: S311 - not security related
    rng.shuffle(combos)
    out = combos[:count]
    while len(out) < count:  # more than the combinations: repeat in another order
        out.extend(rng.sample(combos, min(len(combos), count - len(out))))
    return out


def query_texts() -> list[str]:
    """Short reranking queries like the ones the suggest pipeline sends."""
    return [
        "save energy at night",
        "make the morning routine easier",
        "keep the house safe while away",
        "comfortable temperature in the bedroom",
        "automate lights",
    ]
