"""The typed runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from homeassistant.config_entries import ConfigEntry

from .analysis import Analyzer
from .api import HomeIQClient
from .coordinator import HomeIQHealthCoordinator, HomeIQSuggestionCoordinator
from .history import History
from .options import HomeIQOptions
from .texts import Texts


@dataclass(slots=True)
class HomeIQData:
    """What a config entry holds while it is loaded."""

    client: HomeIQClient
    options: HomeIQOptions
    health: HomeIQHealthCoordinator
    suggestions: HomeIQSuggestionCoordinator
    history: History
    analyzer: Analyzer
    texts: Texts


HomeIQConfigEntry: TypeAlias = ConfigEntry[HomeIQData]
