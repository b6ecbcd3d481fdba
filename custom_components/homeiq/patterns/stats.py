"""Small statistics the detectors share: Wilson bounds and circular time."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

MINUTES_PER_DAY = 1440.0

FloatArray = npt.NDArray[np.float64]


def wilson_lower_bound(successes: int, trials: int, z: float) -> float:
    """Lower bound of the Wilson score interval for a success rate (0 when there are no trials)."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = p + z2 / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, (centre - margin) / denominator)


def circular_distance(a: FloatArray | float, b: float) -> FloatArray:
    """Minutes between times of day on the 24 h circle (23:50 and 00:10 are 20 minutes apart)."""
    diff = np.abs(np.asarray(a, dtype=np.float64) - b) % MINUTES_PER_DAY
    return np.minimum(diff, MINUTES_PER_DAY - diff)


def circular_mean(minutes: FloatArray) -> float:
    """Mean time of day in minutes [0, 1440) on the circle."""
    angles = minutes * (2 * math.pi / MINUTES_PER_DAY)
    angle = math.atan2(float(np.sin(angles).mean()), float(np.cos(angles).mean()))
    mean = (angle * MINUTES_PER_DAY / (2 * math.pi)) % MINUTES_PER_DAY
    return 0.0 if mean >= MINUTES_PER_DAY else mean  # -1e-14 % 1440 == 1440.0


def circular_spread(minutes: FloatArray) -> float:
    """Circular standard deviation in minutes (sqrt(-2 ln R))."""
    if minutes.size == 0:
        return 0.0
    angles = minutes * (2 * math.pi / MINUTES_PER_DAY)
    length = math.hypot(float(np.sin(angles).mean()), float(np.cos(angles).mean()))
    if length <= 0.0:
        return MINUTES_PER_DAY / 2
    return math.sqrt(max(0.0, -2.0 * math.log(min(1.0, length)))) * MINUTES_PER_DAY / (2 * math.pi)


def circular_clusters(
    minutes: FloatArray, radius: float, min_size: int, min_peak_ratio: float = 0.0
) -> list[npt.NDArray[np.intp]]:
    """Greedy density clusters on the 24 h circle.

    Repeatedly takes the densest window of width 2*radius (on a 1-minute histogram), re-centres it
    on the circular mean of its members, and removes them. Returns index arrays into ``minutes``,
    densest first; stops when the densest window holds fewer than ``min_size`` values or fewer
    than ``min_peak_ratio`` times the average window of all values (the rest is background).
    """
    clusters: list[npt.NDArray[np.intp]] = []
    remaining = np.arange(minutes.size)
    width = round(radius)
    kernel_len = 2 * width + 1
    background = min_peak_ratio * minutes.size * kernel_len / MINUTES_PER_DAY
    while remaining.size >= min_size:
        values = minutes[remaining]
        hist = np.bincount(values.astype(np.int64) % 1440, minlength=1440).astype(np.float64)
        wrapped = np.concatenate([hist[-width:], hist, hist[:width]]) if width else hist
        cumulative = np.concatenate([[0.0], np.cumsum(wrapped)])
        density = cumulative[kernel_len:] - cumulative[:-kernel_len]
        peak = int(np.argmax(density))
        if density[peak] < min_size or density[peak] < background:
            break
        # Bin ``peak`` of ``density`` covers values in [peak - width, peak + width + 1).
        window_centre = peak + 0.5
        members = np.flatnonzero(circular_distance(values, window_centre) <= width + 0.5)
        if members.size == 0:  # cannot happen with min_size >= 1; guards the loop's progress
            break
        for _ in range(3):
            centre = circular_mean(values[members])
            refined = np.flatnonzero(circular_distance(values, centre) <= radius)
            if refined.size < min_size or np.array_equal(refined, members):
                break
            members = refined
        clusters.append(remaining[members])
        remaining = np.delete(remaining, members)
    return clusters
