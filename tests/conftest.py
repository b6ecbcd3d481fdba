"""Shared test set-up.

The repository's ``custom_components`` package must be imported before Home Assistant's
``hass`` fixture starts, so that HA's loader finds our integration (phcc requirement).
"""

import custom_components  # noqa: F401
