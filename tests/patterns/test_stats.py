"""Wilson bounds and circular time."""

from __future__ import annotations

import random

import numpy as np
import pytest

from custom_components.homeiq.patterns.stats import (
    circular_clusters,
    circular_distance,
    circular_mean,
    circular_spread,
    wilson_lower_bound,
)


def test_wilson_lower_bound_known_values() -> None:
    # 95 % two-sided (z = 1.96): 8/10 -> 0.4902, 0/10 -> 0, 10/10 -> 0.7225.
    assert wilson_lower_bound(8, 10, 1.96) == pytest.approx(0.4902, abs=1e-4)
    assert wilson_lower_bound(0, 10, 1.96) == 0.0
    assert wilson_lower_bound(10, 10, 1.96) == pytest.approx(0.7225, abs=1e-4)
    assert wilson_lower_bound(0, 0, 1.96) == 0.0


def test_wilson_bound_rewards_more_evidence_at_the_same_rate() -> None:
    assert wilson_lower_bound(9, 10, 1.645) < wilson_lower_bound(90, 100, 1.645) < 0.9


def test_times_either_side_of_midnight_are_close() -> None:
    assert float(circular_distance(23 * 60 + 50, 10)) == pytest.approx(20)
    assert circular_mean(np.array([23 * 60 + 50, 10.0])) == pytest.approx(0.0, abs=1e-6)
    assert circular_spread(np.array([23 * 60 + 50, 10.0])) == pytest.approx(10, abs=0.1)


def test_cluster_across_midnight_is_one_cluster() -> None:
    rng = random.Random(1)
    values = np.array([(rng.gauss(0, 10)) % 1440 for _ in range(30)])
    [cluster] = circular_clusters(values, 40, 5)
    assert cluster.size >= 28


def test_identical_times_at_a_window_edge_terminate() -> None:
    # Values all at one instant used to leave the first window empty and loop forever.
    values = np.full(28, 1140.005)
    clusters = circular_clusters(values, 40, 5)
    assert [c.size for c in clusters] == [28]


def test_two_routines_give_two_clusters_densest_first() -> None:
    rng = random.Random(2)
    morning = [rng.gauss(420, 5) for _ in range(25)]
    evening = [rng.gauss(1140, 5) for _ in range(15)]
    clusters = circular_clusters(np.array(morning + evening), 40, 5)
    assert [c.size for c in clusters] == [25, 15]
