"""Local wall-clock time for arrays of POSIX seconds, correct through DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from .sun import SunEvent, sun_event_utc

_STEP_S = 900  # UTC offsets only change on quarter hours in every zone in use
_EPOCH_DAY = date(1970, 1, 1)


class LocalClock:
    """Maps instants to local days and minutes of the day in one IANA time zone."""

    def __init__(self, time_zone: str, start: float, end: float) -> None:
        self.zone = ZoneInfo(time_zone)
        self._origin = (int(start) // _STEP_S - 96) * _STEP_S  # a day of margin either side
        steps = (int(end) - self._origin) // _STEP_S + 192
        self._offsets = np.array(
            [self._offset_at(self._origin + i * _STEP_S) for i in range(steps)], dtype=np.float64
        )

    def _offset_at(self, instant: float) -> float:
        offset = datetime.fromtimestamp(instant, UTC).astimezone(self.zone).utcoffset()
        return offset.total_seconds() if offset is not None else 0.0

    def offsets(self, instants: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """UTC offset in seconds at each instant."""
        index = np.clip(((instants - self._origin) // _STEP_S).astype(np.int64), 0, self._offsets.size - 1)
        return self._offsets[index]

    def local_seconds(self, instants: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Seconds since 1970-01-01 00:00 local wall-clock time."""
        return instants + self.offsets(instants)

    def day_and_minute(
        self, instants: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Local day number (days since 1970-01-01) and minute of the day [0, 1440)."""
        local = self.local_seconds(instants)
        days = np.floor(local / 86400.0).astype(np.int64)
        minutes = (local - days * 86400.0) / 60.0
        return days, minutes

    def start_of_day(self, instant: float) -> float:
        """The instant of local midnight on the local day of ``instant``."""
        local = datetime.fromtimestamp(instant, UTC).astimezone(self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()

    def instants(
        self, days: npt.NDArray[np.int64], minute: float | npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """The instant of local ``minute`` (one, or one per day) on each local day."""
        local = days.astype(np.float64) * 86400.0 + minute * 60.0
        return local - self.offsets(local - self.offsets(local))


def days_spanned(days: npt.NDArray[np.int64]) -> int:
    """How many local days run from the first to the last of ``days`` (0 when there are none)."""
    return int(days.max() - days.min() + 1) if days.size else 0


def weekday(days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Weekday of local day numbers, Monday = 0 (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def sun_minutes(
    clock: LocalClock,
    days: npt.NDArray[np.int64],
    place: tuple[float, float, float],
    event: SunEvent,
) -> npt.NDArray[np.float64]:
    """Local minute of the day of sunrise/sunset on each local day (NaN when it does not happen);
    ``place`` is latitude, longitude and elevation (m)."""
    out = np.full(days.size, np.nan)
    for i, day in enumerate(days.tolist()):
        moment = sun_event_utc(_EPOCH_DAY + timedelta(days=day), *place[:2], event, place[2])
        if moment is not None:
            local = clock.local_seconds(np.array([moment.timestamp()]))[0]
            out[i] = (local - day * 86400.0) / 60.0
    return out
