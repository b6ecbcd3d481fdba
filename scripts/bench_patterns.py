"""Scale benchmark of the pattern engine: 1,000,000 state changes, 500 entities, 30 days.

Prints mining seconds, events/s and peak RSS, best of several runs, next to a baseline pass that
only reads every event's entity, state and time (interleaved in the same process), so the ratio
says what the mining costs over merely touching the data. Pinned to one CPU core.

    PYTHONPATH=. .venv-ha/bin/python scripts/bench_patterns.py [--events 1000000] [--repeat 3]
    # the CLI's path, parsing included, RSS without the generator's list:
    PYTHONPATH=. .venv-ha/bin/python scripts/bench_patterns.py --write-jsonl /tmp/bench.jsonl
    PYTHONPATH=. .venv-ha/bin/python scripts/bench_patterns.py --jsonl /tmp/bench.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time as dtime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from custom_components.homeiq.patterns import (
    HomeContext,
    StateChange,
    mine_patterns,
    read_events_jsonl,
    state_change_to_dict,
)

END = datetime(2026, 11, 8, 12, tzinfo=UTC)
DAYS = 30
TIME_ZONE = "Europe/Amsterdam"


def _entities(count: int) -> list[tuple[str, int]]:
    """(entity_id, kind) for the home; kinds: 0 numeric sensor, 1 binary sensor, 2 toggle, 3 other."""
    mix = [(0.30, "sensor.power_{:03d}", 0), (0.20, "binary_sensor.motion_{:03d}", 1)]
    mix += [(0.25, "light.lamp_{:03d}", 2), (0.10, "switch.plug_{:03d}", 2), (0.05, "fan.fan_{:03d}", 2)]
    mix += [
        (0.04, "cover.blind_{:03d}", 3),
        (0.03, "media_player.player_{:03d}", 3),
        (0.03, "lock.lock_{:03d}", 3),
    ]
    out: list[tuple[str, int]] = []
    for share, pattern, kind in mix:
        out += [(pattern.format(i), kind) for i in range(round(share * count))]
    return out[:count]


_STATES = {
    "cover": ("open", "closed"),
    "media_player": ("playing", "off"),
    "lock": ("locked", "unlocked"),
}


def _local_midnights(start: float) -> list[float]:
    """POSIX times of local midnight for each day of the window (the home's clock, through DST)."""
    zone = ZoneInfo(TIME_ZONE)
    first = datetime.fromtimestamp(start, zone).date()
    return [datetime.combine(first + timedelta(days=i), dtime(0), zone).timestamp() for i in range(DAYS)]


def generate(n_events: int, n_entities: int, seed: int = 1) -> list[StateChange]:
    """A home with about ``n_events`` changes over 30 days; a third of the toggles follow daily routines."""
    rng = np.random.default_rng(seed)
    entities = _entities(n_entities)
    # Event share per kind: sensors and motion are chatty, toggles less so.
    is_routine = [kind == 2 and int(entity_id[-3:]) % 3 == 0 for entity_id, kind in entities]
    weight = np.array(
        [
            0.0 if routine else {0: 4.0, 1: 3.0, 2: 1.0, 3: 0.6}[kind]
            for (_, kind), routine in zip(entities, is_routine, strict=True)
        ]
    )
    counts = rng.multinomial(n_events - 2 * DAYS * sum(is_routine), weight / weight.sum())
    start = (END - timedelta(days=DAYS)).timestamp()
    events: list[StateChange] = []
    user_ids = ("user-1", None)
    for (entity_id, kind), count, routine in zip(entities, counts, is_routine, strict=True):
        domain = entity_id.partition(".")[0]
        if routine:
            # A routine: on around a fixed local minute every day, off a while later, little else.
            minute = rng.uniform(300, 1380)
            on_times = np.array(_local_midnights(start)) + minute * 60 + rng.normal(0, 600, DAYS)
            off_times = on_times + rng.uniform(1800, 7200, DAYS)
            for t_on, t_off in zip(on_times.tolist(), off_times.tolist(), strict=True):
                events.append(StateChange(entity_id, "on", datetime.fromtimestamp(t_on, UTC), f"r{t_on}"))
                events.append(StateChange(entity_id, "off", datetime.fromtimestamp(t_off, UTC), f"r{t_off}"))
            continue
        times = np.sort(rng.uniform(start, END.timestamp(), count))
        if kind == 0:
            values = np.round(20 + np.cumsum(rng.normal(0, 0.3, count)), 1)
            events += [
                StateChange(entity_id, str(v), datetime.fromtimestamp(t, UTC))
                for t, v in zip(times.tolist(), values.tolist(), strict=True)
            ]
            continue
        on, off = _STATES.get(domain, ("on", "off"))
        manual = kind != 1
        for i, t in enumerate(times.tolist()):
            events.append(
                StateChange(
                    entity_id,
                    on if i % 2 == 0 else off,
                    datetime.fromtimestamp(t, UTC),
                    context_id=f"{entity_id}:{i}" if manual else None,
                    user_id=user_ids[i % 2] if manual else None,
                )
            )
    events.sort(key=lambda e: e.when)
    return events


def baseline_pass(events: Iterable[StateChange]) -> int:
    """Read each event's entity, state and time once: the floor any miner pays."""
    total = 0
    for change in events:
        total += len(change.entity_id) + len(change.state) + int(change.when.timestamp()) % 7
    return total


def _write_jsonl(events: list[StateChange], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for change in events:
            handle.write(json.dumps(state_change_to_dict(change)) + "\n")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    """Generate, then time mining against the baseline pass, best of ``--repeat``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-jsonl", type=Path, help="only generate the events into this file")
    parser.add_argument("--jsonl", type=Path, help="mine this file (parsing included), without generating")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core (the engine's numpy calls use no thread pools)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    home = HomeContext(TIME_ZONE, 52.37, 4.90)

    if args.jsonl is None:
        started = time.perf_counter()
        events = generate(args.events, args.entities)
        print(
            f"generated {len(events):,} events, {args.entities} entities, {DAYS} days "
            f"in {time.perf_counter() - started:.1f} s; RSS so far {_peak_rss_mb():.0f} MB"
        )
        if args.write_jsonl is not None:
            _write_jsonl(events, args.write_jsonl)
            print(f"wrote {args.write_jsonl}")
            return 0
        n = len(events)
        source_name = "events in memory (a list of StateChange)"

        def source() -> Iterator[StateChange]:
            return iter(events)

    else:
        path: Path = args.jsonl
        n = sum(1 for _ in path.open(encoding="utf-8"))
        source_name = f"JSON Lines file {path} (parsing included)"

        def source() -> Iterator[StateChange]:
            return read_events_jsonl(path)

    mine_times, base_times = [], []
    patterns = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        baseline_pass(source())
        base_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        patterns = mine_patterns(source(), home, now=END)
        mine_times.append(time.perf_counter() - t0)
    best, base = min(mine_times), min(base_times)
    kinds: dict[str, int] = {}
    for pattern in patterns:
        kinds[pattern.kind] = kinds.get(pattern.kind, 0) + 1
    print(f"source: {source_name}; {n:,} events; patterns found: {len(patterns)} {kinds}")
    print(f"baseline read pass: best {base:.2f} s of {args.repeat}")
    runs = ", ".join(f"{t:.2f}" for t in mine_times)
    print(f"mine_patterns:      best {best:.2f} s of {args.repeat} (all: {runs})")
    print(f"ratio mine/baseline: {best / base:.1f}x")
    print(f"events/s: {n / best:,.0f}")
    held = "events held in memory included" if args.jsonl is None else "streamed from the file"
    print(f"peak RSS of the whole process ({held}): {_peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
