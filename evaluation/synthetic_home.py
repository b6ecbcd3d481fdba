"""A synthetic home: weeks of state changes with planted routines and their ground truth.

The home has what makes mining hard: weekday-only and weekend-only routines, one around midnight,
a DST change inside the default window, sun-relative routines, sequences with variable delay,
auto-off durations, existing automations (time-, state- and sun-triggered) whose effects must not
be suggested, dozens of noise entities toggled at random, chatty motion sensors, chatty numeric
sensors, ``unavailable`` blips and attribute-only changes. Manual changes come half from the app
(``user_id``) and half from physical switches (no user, no parent).

And what real homes add (each routine names its phenomena, for the per-phenomenon table):
- ``group``: lamps switched together within seconds, each with its own context;
- ``conditional``: a door or motion sensor that fires ten times more often than the action that
  follows some of its firings, explained by a condition (the lamps are off, it is dark);
- ``presence``: two persons whose phones flap (home, not_home, home within a minute), the robot
  vacuum started when the last one leaves, a lamp when the first one comes home after dark;
- ``skips``: a wake-up light skipped on a fifth of the weekdays and used at random later in the
  morning; a weekend routine kept on 6 of the 8 weekend days of four weeks.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from custom_components.homeiq.patterns import HomeContext, StateChange, state_change_to_dict
from custom_components.homeiq.patterns.sun import sun_event_utc

# The default window (28 days before this) holds the end of summer time in Europe (25 October).
DEFAULT_END = datetime(2026, 11, 8, 12, 0, tzinfo=UTC)
DEFAULT_TIME_ZONE = "Europe/Amsterdam"
DEFAULT_LATITUDE = 52.3676
DEFAULT_LONGITUDE = 4.9041

RoutineKind = Literal["time_of_day", "sun", "sequence", "duration"]
DaySet = Literal["daily", "weekdays", "weekend"]
PHENOMENA = ("clock", "sun", "sequence", "duration", "group", "conditional", "presence", "skips")

OFFICE_LAMPS = tuple(
    f"light.office_{name}" for name in ("desk", "bloom_1", "bloom_2", "go", "strip", "ceiling", "spot")
)
KITCHEN_GROUP = ("light.kitchen_ceiling", "light.kitchen_counter", "switch.kitchen_strip")
PERSONS = ("person.alice", "person.bob")


@dataclass(frozen=True)
class PlantedRoutine:
    """A routine the generator planted: what a perfect miner would report."""

    name: str
    kind: RoutineKind
    entity_id: str
    state: str
    days: DaySet = "daily"
    at_min: float | None = None  # time_of_day: local clock minute
    sun_event: str | None = None  # sun: sunrise | sunset
    offset_min: float | None = None  # sun: minutes after the event (negative: before)
    trigger_entity: str | None = None  # sequence
    trigger_state: str | None = None
    for_min: float | None = None  # duration
    targets: tuple[str, ...] = ()  # a group's entities (``entity_id`` is the first of them)
    conditions: tuple[str, ...] = ()  # condition keys a rule must carry: "sun=below_horizon", "target"
    phenomena: tuple[str, ...] = ()

    @property
    def action_entities(self) -> tuple[str, ...]:
        """The entities the routine sets."""
        return self.targets or (self.entity_id,)


@dataclass
class SyntheticHome:
    """Events (sorted by time), existing automations and the ground truth of one synthetic home."""

    seed: int
    start: datetime
    end: datetime
    time_zone: str
    latitude: float
    longitude: float
    events: list[StateChange]
    automations: list[dict[str, Any]]
    routines: list[PlantedRoutine]
    noise_entities: frozenset[str]
    automated_entities: frozenset[str]
    group_members: frozenset[str] = frozenset()

    def home_context(self) -> HomeContext:
        """The home's time zone and location for ``mine_patterns``."""
        return HomeContext(self.time_zone, self.latitude, self.longitude)

    def write_jsonl(self, path: Path) -> None:
        """Write the events as JSON Lines (the format ``read_events_jsonl`` and the CLI read)."""
        with path.open("w", encoding="utf-8") as handle:
            for change in self.events:
                handle.write(json.dumps(state_change_to_dict(change)) + "\n")

    def write(self, directory: Path) -> None:
        """Write ``events.jsonl``, ``automations.json`` and ``truth.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.write_jsonl(directory / "events.jsonl")
        (directory / "automations.json").write_text(json.dumps(self.automations, indent=2) + "\n")
        truth = {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "time_zone": self.time_zone,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "routines": [asdict(r) for r in self.routines],
            "noise_entities": sorted(self.noise_entities),
            "group_members": sorted(self.group_members),
            "automated_entities": sorted(self.automated_entities),
        }
        (directory / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")


@dataclass(order=True)
class _Intent:
    """Someone (or something) wants ``entity_id`` in ``state`` at ``when``."""

    when: datetime
    entity_id: str = field(compare=False)
    state: str = field(compare=False)
    context_id: str | None = field(compare=False, default=None)
    user_id: str | None = field(compare=False, default=None)
    parent_id: str | None = field(compare=False, default=None)


class _Builder:
    """Collects intents and turns them into consistent state changes."""

    def __init__(self, rng: random.Random, tz: ZoneInfo, days: list[date]) -> None:
        self.rng = rng
        self.tz = tz
        self.days = days
        self.intents: list[_Intent] = []
        self.raw: list[StateChange] = []  # already-consistent records (sensors, automation markers)

    def context(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128)).hex

    def local(self, day: date, minute: float) -> datetime:
        """UTC instant of a local wall-clock minute (may exceed 1440: the next day)."""
        return (datetime.combine(day, time(0), self.tz) + timedelta(minutes=minute)).astimezone(UTC)

    def manual(self, entity_id: str, state: str, when: datetime) -> None:
        user = "user-app" if self.rng.random() < 0.5 else None
        self.intents.append(_Intent(when, entity_id, state, self.context(), user))

    def automated(
        self, entity_id: str, state: str, when: datetime, *, parent: str | None, marker: str
    ) -> None:
        """An automation's effect; a time/sun trigger has no parent, only the marker's context."""
        ctx = self.context()
        self.raw.append(StateChange(marker, "on", when, context_id=ctx, parent_id=parent))
        self.intents.append(_Intent(when + timedelta(milliseconds=300), entity_id, state, ctx, None, parent))

    def changes(self) -> Iterator[StateChange]:
        """Apply intents in time order; an intent for the current state is an attribute-only change
        (kept now and then, as HA records brightness changes) or nothing."""
        current: dict[str, str] = {}
        for intent in sorted(self.intents):
            if current.get(intent.entity_id) == intent.state:
                if self.rng.random() < 0.1:
                    yield self._record(intent)
                continue
            current[intent.entity_id] = intent.state
            yield self._record(intent)

    @staticmethod
    def _record(intent: _Intent) -> StateChange:
        return StateChange(
            intent.entity_id, intent.state, intent.when, intent.context_id, intent.user_id, intent.parent_id
        )


def _weekday(day: date) -> bool:
    return day.weekday() < 5


def generate_home(
    seed: int,
    days: int = 28,
    *,
    end: datetime = DEFAULT_END,
    time_zone: str = DEFAULT_TIME_ZONE,
    latitude: float = DEFAULT_LATITUDE,
    longitude: float = DEFAULT_LONGITUDE,
    noise_toggles: int = 30,
    motion_sensors: int = 8,
    numeric_sensors: int = 10,
) -> SyntheticHome:
    """A synthetic home with ``days`` days of history ending at ``end`` (timezone-aware).

    The same seed gives the same home. Planted times vary with the seed, so several seeds test
    several homes.
    """
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not cryptography
    tz = ZoneInfo(time_zone)
    end_utc = end.astimezone(UTC)
    start_utc = end_utc - timedelta(days=days)
    first_day = start_utc.astimezone(tz).date()
    all_days = [
        first_day + timedelta(days=i) for i in range((end_utc.astimezone(tz).date() - first_day).days + 1)
    ]
    b = _Builder(rng, tz, all_days)
    routines = [
        *_clock_routines(b),
        *_sun_routines(b, latitude, longitude),
        *_sequence_routines(b),
        *_duration_routines(b),
        *_group_routines(b),
        *_conditional_routines(b, latitude, longitude),
        *_presence_routines(b, latitude, longitude),
    ]
    automations = _existing_automations(b, all_days, latitude, longitude)
    noise = _noise(b, all_days, noise_toggles, motion_sensors)
    _numeric_sensors(b, start_utc, end_utc, numeric_sensors)

    events = [e for e in [*b.changes(), *b.raw] if start_utc <= e.when <= end_utc]
    events.sort(key=lambda e: e.when)
    return SyntheticHome(
        seed=seed,
        start=start_utc,
        end=end_utc,
        time_zone=time_zone,
        latitude=latitude,
        longitude=longitude,
        events=events,
        automations=automations,
        routines=routines,
        noise_entities=frozenset(noise),
        automated_entities=frozenset({"light.garden", "light.garage", "switch.christmas_lights"}),
        group_members=frozenset(m for r in routines for m in r.targets),
    )


def _planted_time(rng: random.Random, base: float, spread: float = 20.0) -> float:
    """A routine's time for this seed: ``base`` moved by up to ``spread`` minutes."""
    return round(base + rng.uniform(-spread, spread))


def _clock_routines(b: _Builder) -> list[PlantedRoutine]:
    """Clock-time routines kept on ~92 % of their days, each undone later at a loose time."""
    rng = b.rng
    # name, entity, state, time, day set, jitter sd (min), undo state, undo window (min after)
    table: list[tuple[str, str, str, float, DaySet, float, str, float, float]] = [
        ("wake_up_light", "light.bedroom", "on", 6 * 60 + 45, "weekdays", 7.0, "off", 40, 150),
        ("weekend_coffee", "switch.coffee_maker", "on", 9 * 60 + 30, "weekend", 8.0, "off", 20, 120),
        ("midnight_lights_off", "light.living_room", "off", 23 * 60 + 55, "daily", 10.0, "on", -330, -120),
        ("lock_up", "lock.front_door", "locked", 22 * 60 + 40, "daily", 8.0, "unlocked", -900, -600),
        ("morning_heating", "climate.living_room", "heat", 6 * 60 + 15, "weekdays", 5.0, "off", 90, 240),
        (
            "evening_music",
            "media_player.bedroom_speaker",
            "playing",
            21 * 60 + 30,
            "daily",
            10.0,
            "off",
            20,
            90,
        ),
    ]
    routines = []
    for name, entity_id, state, base, day_set, sd, undo_state, lo, hi in table:
        # The midnight routine stays within a few minutes of midnight, on either side.
        at = _planted_time(rng, base, 8.0 if name == "midnight_lights_off" else 20.0)
        skips = name in ("wake_up_light", "weekend_coffee")
        phenomena = ("clock", "skips") if skips else ("clock",)
        routines.append(
            PlantedRoutine(name, "time_of_day", entity_id, state, day_set, at_min=at, phenomena=phenomena)
        )
        eligible = [d for d in b.days if day_set == "daily" or (day_set == "weekdays") == _weekday(d)]
        # A fifth of the wake-up days skipped (4 of 20 weekdays); 2 of the 8 weekend days without coffee.
        skipped = set(
            rng.sample(eligible, len(eligible) // 5 if day_set == "weekdays" else len(eligible) // 4)
        )
        for day in b.days:
            wanted = day in eligible
            kept = day not in skipped if skips else rng.random() < 0.92
            if wanted and kept:
                b.manual(entity_id, state, b.local(day, at + rng.gauss(0.0, sd)))
            if skips and rng.random() < 0.4:  # the same entity used off-routine, later in the day
                b.manual(entity_id, state, b.local(day, at + rng.uniform(120, 300)))
                b.manual(entity_id, undo_state, b.local(day, at + rng.uniform(310, 400)))
            # The opposite change at a loose time, so that the routine's change is a change every day.
            b.manual(entity_id, undo_state, b.local(day, at + rng.uniform(lo, hi)))
    return routines


def _sun_routines(b: _Builder, latitude: float, longitude: float) -> list[PlantedRoutine]:
    """Porch light before sunset, blinds closed after sunset (opened in the morning)."""
    rng = b.rng
    routines = []
    for name, entity_id, state, undo_state, base, sd in [
        ("porch_light_at_dusk", "light.porch", "on", "off", -10, 5.0),
        ("blinds_after_sunset", "cover.living_room_blinds", "closed", "open", 20, 6.0),
    ]:
        offset = _planted_time(rng, base, 10.0)
        routines.append(
            PlantedRoutine(
                name, "sun", entity_id, state, sun_event="sunset", offset_min=offset, phenomena=("sun",)
            )
        )
        for day in b.days:
            sunset = sun_event_utc(day, latitude, longitude, "sunset")
            if sunset is None:
                continue
            if rng.random() < 0.93:
                b.manual(entity_id, state, sunset + timedelta(minutes=offset + rng.gauss(0.0, sd)))
            b.manual(entity_id, undo_state, b.local(day, rng.uniform(6 * 60 + 30, 9 * 60 + 30)))
    return routines


def _sequence_routines(b: _Builder) -> list[PlantedRoutine]:
    """Hall light after the front door opens; soundbar after the TV starts (variable delays)."""
    rng = b.rng
    for day in b.days:
        for _ in range(rng.randint(3, 7)):
            opened = b.local(day, rng.uniform(7 * 60, 22 * 60))
            closed = opened + timedelta(seconds=rng.uniform(8, 60))
            b.intents.append(_Intent(opened, "binary_sensor.front_door", "on", b.context()))
            b.intents.append(_Intent(closed, "binary_sensor.front_door", "off", b.context()))
            if rng.random() < 0.88:
                lit = opened + timedelta(seconds=rng.uniform(3, 90))
                b.manual("light.hallway", "on", lit)
                b.manual("light.hallway", "off", lit + timedelta(minutes=rng.uniform(5, 90)))
        for _ in range(rng.randint(1, 2)):
            playing = b.local(day, rng.uniform(17 * 60, 22 * 60))
            b.manual("media_player.living_room_tv", "playing", playing)
            stopped = playing + timedelta(minutes=rng.uniform(25, 110))
            b.manual("media_player.living_room_tv", "off", stopped)
            if rng.random() < 0.9:
                b.manual("switch.soundbar", "on", playing + timedelta(seconds=rng.uniform(5, 45)))
            b.manual("switch.soundbar", "off", stopped + timedelta(seconds=rng.uniform(5, 600)))
    return [
        PlantedRoutine(
            "hall_light_on_door",
            "sequence",
            "light.hallway",
            "on",
            trigger_entity="binary_sensor.front_door",
            trigger_state="on",
            phenomena=("sequence",),
        ),
        PlantedRoutine(
            "soundbar_with_tv",
            "sequence",
            "switch.soundbar",
            "on",
            trigger_entity="media_player.living_room_tv",
            trigger_state="playing",
            phenomena=("sequence",),
        ),
    ]


def _duration_routines(b: _Builder) -> list[PlantedRoutine]:
    """Bathroom fan and pantry light, switched off by hand a consistent time after going on."""
    rng = b.rng
    routines = []
    for name, entity_id, minutes, sd in [
        ("bathroom_fan_auto_off", "fan.bathroom", float(rng.choice([10, 15, 20])), 1.5),
        ("pantry_light_auto_off", "light.pantry", float(rng.choice([3, 4, 5])), 0.5),
    ]:
        routines.append(
            PlantedRoutine(name, "duration", entity_id, "off", for_min=minutes, phenomena=("duration",))
        )
        for day in b.days:
            for _ in range(rng.randint(1, 4)):
                on = b.local(day, rng.uniform(6 * 60, 23 * 60))
                b.manual(entity_id, "on", on)
                if rng.random() < 0.9:
                    off = on + timedelta(minutes=max(0.5, minutes + rng.gauss(0.0, sd)))
                else:
                    off = on + timedelta(minutes=rng.uniform(60, 180))
                b.manual(entity_id, "off", off)
    return routines


def _together(b: _Builder, entities: tuple[str, ...], state: str, when: datetime, spread_s: float) -> None:
    """Set several entities by hand within ``spread_s`` seconds, each with its own context."""
    user = "user-app" if b.rng.random() < 0.5 else None
    for entity_id in entities:
        offset = timedelta(seconds=b.rng.uniform(0.0, spread_s))
        b.intents.append(_Intent(when + offset, entity_id, state, b.context(), user))


def _door(b: _Builder, opened: datetime) -> None:
    """The office door opens and closes again some seconds later."""
    b.intents.append(_Intent(opened, "binary_sensor.office_door", "on", b.context()))
    closed = opened + timedelta(seconds=b.rng.uniform(5, 40))
    b.intents.append(_Intent(closed, "binary_sensor.office_door", "off", b.context()))


def _group_routines(b: _Builder) -> list[PlantedRoutine]:
    """Three kitchen lights switched on together around 18:30, off together late in the evening."""
    rng = b.rng
    at = _planted_time(rng, 18 * 60 + 30)
    for day in b.days:
        if rng.random() < 0.9:
            _together(b, KITCHEN_GROUP, "on", b.local(day, at + rng.gauss(0.0, 8.0)), 20.0)
        _together(b, KITCHEN_GROUP, "off", b.local(day, rng.uniform(21 * 60, 23 * 60)), 20.0)
        if rng.random() < 0.2:  # the counter light alone, for a late snack
            lone = b.local(day, rng.uniform(23 * 60 + 10, 23 * 60 + 50))
            b.manual(KITCHEN_GROUP[1], "on", lone)
            b.manual(KITCHEN_GROUP[1], "off", lone + timedelta(minutes=rng.uniform(3, 15)))
    return [
        PlantedRoutine(
            "kitchen_lights_together",
            "time_of_day",
            KITCHEN_GROUP[0],
            "on",
            at_min=at,
            targets=KITCHEN_GROUP,
            phenomena=("group", "clock"),
        )
    ]


def _conditional_routines(b: _Builder, latitude: float, longitude: float) -> list[PlantedRoutine]:
    """The office: seven lamps turned on together soon after the door opens, when they are off;
    the door opens ten times as often. The entrance light after motion, only when it is dark."""
    rng = b.rng
    for day in b.days:
        weekday = _weekday(day)
        # The door: people in and out while the office is lit, far more often than the lamps are
        # switched; now and then someone looks in while it is dark and leaves the lamps off.
        arrivals = [rng.uniform(8 * 60, 9 * 60 + 30)] if weekday else []
        if weekday and rng.random() < 0.5:
            arrivals.append(rng.uniform(13 * 60, 14 * 60))  # back from lunch, the lamps were off
        if rng.random() < 0.3:
            _door(b, b.local(day, rng.uniform(6 * 60, 22 * 60)))
        for arrival in arrivals:
            if rng.random() > 0.9:
                continue
            opened = b.local(day, arrival)
            _door(b, opened)
            _together(b, OFFICE_LAMPS, "on", opened + timedelta(seconds=rng.uniform(10, 50)), 8.0)
            leave = arrival + rng.uniform(150, 240) if arrival < 12 * 60 else rng.uniform(17 * 60, 19 * 60)
            for _ in range(round((leave - arrival) / 60 * rng.uniform(2.0, 3.5))):
                _door(b, b.local(day, rng.uniform(arrival + 3, leave - 3)))
            _together(b, OFFICE_LAMPS, "off", b.local(day, leave), 8.0)
            _door(b, b.local(day, leave + 0.5))
        # Entrance: motion all day; the light is turned on after it only when it is dark.
        sunset = sun_event_utc(day, latitude, longitude, "sunset")
        sunrise = sun_event_utc(day, latitude, longitude, "sunrise")
        for _ in range(rng.randint(10, 18)):
            moved = b.local(day, rng.uniform(6 * 60, 23 * 60 + 30))
            b.intents.append(_Intent(moved, "binary_sensor.entrance_motion", "on", b.context()))
            b.intents.append(
                _Intent(
                    moved + timedelta(seconds=rng.uniform(30, 90)), "binary_sensor.entrance_motion", "off"
                )
            )
            dark = sunset is not None and sunrise is not None and not (sunrise < moved < sunset)
            if dark and rng.random() < 0.85:
                lit = moved + timedelta(seconds=rng.uniform(3, 25))
                b.manual("light.entrance", "on", lit)
                b.manual("light.entrance", "off", lit + timedelta(minutes=rng.uniform(2, 6)))
    return [
        PlantedRoutine(
            "office_lamps_on_door",
            "sequence",
            OFFICE_LAMPS[0],
            "on",
            trigger_entity="binary_sensor.office_door",
            trigger_state="on",
            targets=OFFICE_LAMPS,
            conditions=("target",),
            phenomena=("group", "conditional"),
        ),
        PlantedRoutine(
            "entrance_light_when_dark",
            "sequence",
            "light.entrance",
            "on",
            trigger_entity="binary_sensor.entrance_motion",
            trigger_state="on",
            conditions=("sun=below_horizon",),
            phenomena=("conditional",),
        ),
    ]


def _presence_routines(b: _Builder, latitude: float, longitude: float) -> list[PlantedRoutine]:
    """Two persons (and their flapping phone trackers): the vacuum starts when the last one
    leaves, the living room lamp goes on when the first one comes home after dark."""
    rng = b.rng
    lamp_days = 0
    for day in b.days:
        away: dict[str, tuple[float, float]] = {}
        for person in PERSONS:
            if _weekday(day) or rng.random() < 0.6:
                leave = rng.uniform(7 * 60 + 30, 9 * 60) if _weekday(day) else rng.uniform(10 * 60, 14 * 60)
                back = leave + (rng.uniform(9.5 * 60, 12 * 60) if _weekday(day) else rng.uniform(60, 240))
                away[person] = (leave, back)
        for person, (leave, back) in away.items():
            tracker = f"device_tracker.{person.partition('.')[2]}_phone"
            for entity_id in (person, tracker):
                b.intents.append(_Intent(b.local(day, leave), entity_id, "not_home", b.context()))
                b.intents.append(_Intent(b.local(day, back), entity_id, "home", b.context()))
        if len(away) == len(PERSONS):
            last_out = max(leave for leave, _ in away.values())
            first_in = min(back for _, back in away.values())
            if first_in > last_out:
                if rng.random() < 0.85:
                    b.manual("vacuum.robot", "cleaning", b.local(day, last_out + rng.uniform(0.5, 4)))
                b.manual("vacuum.robot", "docked", b.local(day, last_out + rng.uniform(60, 100)))
                arrived = b.local(day, first_in)
                sunset = sun_event_utc(day, latitude, longitude, "sunset")
                if sunset is not None and arrived > sunset and rng.random() < 0.9:
                    lamp_days += 1
                    b.manual(
                        "light.living_room_lamp", "on", arrived + timedelta(seconds=rng.uniform(20, 120))
                    )
        b.manual("light.living_room_lamp", "off", b.local(day, rng.uniform(23 * 60, 23 * 60 + 50)))
        # Phones flap while their owners are at home: not_home and back within a minute.
        for person in PERSONS:
            tracker = f"device_tracker.{person.partition('.')[2]}_phone"
            home_from = max(19 * 60.0, away[person][1] + 10) if person in away else 19 * 60.0
            for _ in range(rng.randint(0, 3) if home_from < 23 * 60 else 0):
                gone = b.local(day, rng.uniform(home_from, 23 * 60 + 30))
                returned = gone + timedelta(seconds=rng.uniform(20, 60))
                for entity_id in (person, tracker):
                    b.intents.append(_Intent(gone, entity_id, "not_home", b.context()))
                    b.intents.append(_Intent(returned, entity_id, "home", b.context()))
    lamp = PlantedRoutine(
        "lamp_when_first_home_after_dark",
        "sequence",
        "light.living_room_lamp",
        "on",
        trigger_entity="zone.home",
        trigger_state="home",
        conditions=("sun=below_horizon",),
        phenomena=("presence", "conditional"),
    )
    # In summer nobody comes home after dark: then there is no such habit to find.
    return [
        PlantedRoutine(
            "vacuum_when_everyone_left",
            "sequence",
            "vacuum.robot",
            "cleaning",
            trigger_entity="zone.home",
            trigger_state="not_home",
            phenomena=("presence",),
        ),
        *([lamp] if lamp_days >= 8 else []),
    ]


def _existing_automations(
    b: _Builder, days: list[date], latitude: float, longitude: float
) -> list[dict[str, Any]]:
    """Three automations (time, state, sun trigger) and their effects in the history."""
    rng = b.rng
    for day in days:
        b.automated(
            "light.garden", "on", b.local(day, 19 * 60), parent=None, marker="automation.garden_lights_on"
        )
        b.automated(
            "light.garden", "off", b.local(day, 23 * 60), parent=None, marker="automation.garden_lights_off"
        )
        sunset = sun_event_utc(day, latitude, longitude, "sunset")
        if sunset is not None:
            b.automated(
                "switch.christmas_lights", "on", sunset, parent=None, marker="automation.christmas_lights"
            )
            b.automated(
                "switch.christmas_lights",
                "off",
                b.local(day, 23 * 60 + 30),
                parent=None,
                marker="automation.christmas_lights",
            )
        for _ in range(rng.randint(1, 4)):
            opened = b.local(day, rng.uniform(7 * 60, 21 * 60))
            door_ctx = b.context()
            b.intents.append(_Intent(opened, "binary_sensor.garage_door", "on", door_ctx))
            b.intents.append(
                _Intent(opened + timedelta(minutes=rng.uniform(1, 4)), "binary_sensor.garage_door", "off")
            )
            b.automated("light.garage", "on", opened, parent=door_ctx, marker="automation.garage_light")
            b.automated(
                "light.garage",
                "off",
                opened + timedelta(minutes=5),
                parent=b.context(),
                marker="automation.garage_light_off",
            )
    return [
        {
            "id": "garden_lights_on",
            "alias": "Garden lights on at 19:00",
            "triggers": [{"trigger": "time", "at": "19:00:00"}],
            "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.garden"}}],
        },
        {
            "id": "garden_lights_off",
            "alias": "Garden lights off at 23:00",
            "trigger": [{"platform": "time", "at": "23:00:00"}],
            "action": [{"service": "light.turn_off", "entity_id": "light.garden"}],
        },
        {
            "id": "christmas_lights",
            "alias": "Christmas lights at sunset",
            "triggers": [{"trigger": "sun", "event": "sunset"}, {"trigger": "time", "at": "23:30:00"}],
            "actions": [
                {
                    "choose": [
                        {
                            "conditions": [{"condition": "trigger", "id": "0"}],
                            "sequence": [
                                {
                                    "action": "switch.turn_on",
                                    "target": {"entity_id": "switch.christmas_lights"},
                                }
                            ],
                        }
                    ],
                    "default": [
                        {"action": "switch.turn_off", "target": {"entity_id": "switch.christmas_lights"}}
                    ],
                }
            ],
        },
        {
            "id": "garage_light",
            "alias": "Garage light when the door opens",
            "triggers": [{"trigger": "state", "entity_id": "binary_sensor.garage_door", "to": "on"}],
            "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.garage"}}],
        },
        {
            "id": "garage_light_off",
            "alias": "Garage light off after 5 minutes",
            "triggers": [
                {"trigger": "state", "entity_id": "light.garage", "to": "on", "for": {"minutes": 5}}
            ],
            "actions": [{"action": "light.turn_off", "target": {"entity_id": "light.garage"}}],
        },
    ]


def _noise(b: _Builder, days: list[date], toggles: int, motion: int) -> list[str]:
    """Entities toggled by hand at random times, and chatty motion sensors."""
    rng = b.rng
    names: list[str] = []
    domains = ["light", "switch", "input_boolean", "fan"]
    for i in range(toggles):
        entity_id = f"{domains[i % len(domains)]}.noise_{i:02d}"
        names.append(entity_id)
        per_day = rng.choice([0.5, 1, 2, 4, 8, 16, 30])
        # Some noise is used all day, some only in waking hours.
        lo, hi = rng.choice([(0.0, 1440.0), (7 * 60.0, 23 * 60.0), (8 * 60.0, 18 * 60.0)])
        for day in days:
            for _ in range(_poisson(rng, per_day)):
                b.manual(entity_id, rng.choice(["on", "off"]), b.local(day, rng.uniform(lo, hi)))
    for i in range(motion):
        entity_id = f"binary_sensor.noise_motion_{i:02d}"
        names.append(entity_id)
        per_day = rng.choice([20, 50, 100, 200])
        for day in days:
            for _ in range(_poisson(rng, per_day)):
                start = b.local(day, rng.uniform(6 * 60, 24 * 60))
                b.intents.append(_Intent(start, entity_id, "on", b.context()))
                b.intents.append(_Intent(start + timedelta(seconds=rng.uniform(30, 180)), entity_id, "off"))
            if rng.random() < 0.1:  # a radio blip: unavailable and back
                blip = b.local(day, rng.uniform(0, 1440))
                b.intents.append(_Intent(blip, entity_id, "unavailable"))
                b.intents.append(_Intent(blip + timedelta(seconds=40), entity_id, "off"))
    return names


def _numeric_sensors(b: _Builder, start: datetime, end: datetime, count: int) -> None:
    """Temperature and power sensors reporting every few minutes, with the odd ``unknown``."""
    rng = b.rng
    for i in range(count):
        entity_id = f"sensor.noise_{'temperature' if i % 2 else 'power'}_{i:02d}"
        value = rng.uniform(15, 25)
        when = start
        while when < end:
            when += timedelta(seconds=rng.uniform(60, 600))
            value += rng.gauss(0, 0.2)
            state = "unknown" if rng.random() < 0.002 else f"{value:.1f}"
            b.raw.append(StateChange(entity_id, state, when, b.context()))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are small)."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
