"""Measured quality of the pattern engine: synthetic homes with planted routines, and a scorer."""

from __future__ import annotations

from .score import Score, score_home, score_seeds
from .synthetic_home import PlantedRoutine, SyntheticHome, generate_home

__all__ = ["PlantedRoutine", "Score", "SyntheticHome", "generate_home", "score_home", "score_seeds"]
