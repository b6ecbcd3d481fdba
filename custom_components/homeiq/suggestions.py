"""The suggestions of one config entry: records, the analysis merge and the user's decisions.

`homeiq.<entry_id>.suggestions` holds every suggestion with its status (new / accepted /
dismissed / snoozed until a time), plus the last analysis summary. It is saved right away after
every change: a decision must not be lost by a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .api import RankedSuggestion
from .automations import async_create_automation
from .const import DOMAIN, LOGGER
from .patterns import Pattern

STORAGE_VERSION = 1


class SuggestionStatus(StrEnum):
    """Where a suggestion stands with the user."""

    NEW = "new"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"
    SNOOZED = "snoozed"


@dataclass(slots=True)
class Suggestion:
    """A mined pattern as ranked and classified by the add-on, with the user's decision."""

    id: str
    text: str
    kind: str
    automation: dict[str, Any]
    entities: list[str]
    support_days: int
    occurrences: int
    confidence: float
    score: float
    category: str | None
    priority: str | None
    first_seen: datetime
    last_seen: datetime
    status: SuggestionStatus = SuggestionStatus.NEW
    snoozed_until: datetime | None = None
    automation_id: str | None = None
    automation_entity_id: str | None = None
    decided_at: datetime | None = None
    priority_reason: str | None = None
    """Why the add-on gave this priority ("Happens on 24 of 28 days ...")."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """The pattern's evidence: occurrences, action_count, support_days, eligible_days, coverage,
    precision and trigger_count (for rules), and ``text``, the same in words."""

    @property
    def evidence_text(self) -> str:
        """Why this is suggested, in words ("35 of the 39 times ...")."""
        return str(self.evidence.get("text", ""))

    def effective_status(self, now: datetime) -> SuggestionStatus:
        """A snooze that has run out makes the suggestion new again."""
        if self.status is SuggestionStatus.SNOOZED and (
            self.snoozed_until is None or self.snoozed_until <= now
        ):
            return SuggestionStatus.NEW
        return self.status

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """JSON-friendly view, with the effective status."""
        data = asdict(self)
        data["status"] = self.effective_status(now).value
        for key in ("first_seen", "last_seen", "snoozed_until", "decided_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suggestion:
        """Rebuild from `as_dict`-style data (the stored status, not the effective one)."""

        def when(key: str) -> datetime | None:
            value = data.get(key)
            return dt_util.parse_datetime(value) if isinstance(value, str) else None

        first_seen = when("first_seen") or dt_util.utcnow()
        return cls(
            id=str(data["id"]),
            text=str(data["text"]),
            kind=str(data.get("kind", "")),
            automation=dict(data.get("automation") or {}),
            entities=[str(e) for e in data.get("entities", [])],
            support_days=int(data.get("support_days", 0)),
            occurrences=int(data.get("occurrences", 0)),
            confidence=float(data.get("confidence", 0.0)),
            score=float(data.get("score", 0.0)),
            category=data.get("category"),
            priority=data.get("priority"),
            first_seen=first_seen,
            last_seen=when("last_seen") or first_seen,
            status=SuggestionStatus(data.get("status", SuggestionStatus.NEW)),
            snoozed_until=when("snoozed_until"),
            automation_id=data.get("automation_id"),
            automation_entity_id=data.get("automation_entity_id"),
            decided_at=when("decided_at"),
            priority_reason=data.get("priority_reason"),
            evidence=dict(data.get("evidence") or {}),
        )

    @classmethod
    def from_pattern(cls, pattern: Pattern, ranked: RankedSuggestion, now: datetime) -> Suggestion:
        """A new suggestion for a mined pattern as the add-on ranked and classified it."""
        suggestion = cls(
            id=pattern.id,
            text="",
            kind=pattern.kind,
            automation={},
            entities=[],
            support_days=0,
            occurrences=0,
            confidence=0.0,
            score=0.0,
            category=None,
            priority=None,
            first_seen=now,
            last_seen=now,
        )
        suggestion.refresh(pattern, ranked, now)
        return suggestion

    def refresh(self, pattern: Pattern, ranked: RankedSuggestion, now: datetime) -> None:
        """Take a re-mined pattern's evidence and ranking; the user's decision stays."""
        self.text = pattern.text
        self.kind = pattern.kind
        self.automation = pattern.automation_config()
        self.entities = list(pattern.entities)
        self.support_days = pattern.support_days
        self.occurrences = pattern.occurrences
        self.confidence = pattern.confidence
        self.evidence = pattern.evidence.as_dict()
        self.score = ranked.score
        self.category = ranked.category
        self.priority = ranked.priority
        self.priority_reason = ranked.priority_reason
        self.last_seen = now


DECIDED = frozenset({SuggestionStatus.ACCEPTED, SuggestionStatus.DISMISSED})


class SuggestionStore:
    """All suggestions of one config entry and the last analysis summary.

    `on_change` (set by the suggestion coordinator) is called after every save, so the entities
    that show the suggestions update.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Create the store for one config entry (nothing is read until `async_load`)."""
        self._hass = hass
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.suggestions")
        self.suggestions: dict[str, Suggestion] = {}
        self.last_analysis: dict[str, Any] | None = None
        self.on_change: Callable[[], None] | None = None

    async def async_load(self) -> None:
        """Read what an earlier run saved."""
        data = await self._store.async_load() or {}
        self.suggestions = {}
        for raw in data.get("suggestions", []):
            try:
                suggestion = Suggestion.from_dict(raw)
            except (KeyError, TypeError, ValueError) as err:
                # One damaged record must not cost the user every other decision.
                LOGGER.warning("Skipping a damaged stored suggestion (%r): %s", raw, err)
                continue
            self.suggestions[suggestion.id] = suggestion
        self.last_analysis = data.get("last_analysis")

    async def async_save(self) -> None:
        """Write everything now, then tell the entities."""
        await self._store.async_save(
            {
                "suggestions": [
                    {**s.as_dict(dt_util.utcnow()), "status": s.status.value}
                    for s in self.suggestions.values()
                ],
                "last_analysis": self.last_analysis,
            }
        )
        if self.on_change is not None:
            self.on_change()

    async def async_remove(self) -> None:
        """Delete the file (config entry removed)."""
        await self._store.async_remove()

    def with_status(self, now: datetime, *statuses: SuggestionStatus) -> list[Suggestion]:
        """Suggestions whose effective status is one of `statuses`, best score first."""
        wanted = set(statuses)
        found = [s for s in self.suggestions.values() if s.effective_status(now) in wanted]
        return sorted(found, key=lambda s: (-s.score, s.text))

    def decided(self) -> list[Suggestion]:
        """Accepted and dismissed suggestions: analyses never offer these again."""
        return [s for s in self.suggestions.values() if s.status in DECIDED]

    # --- an analysis' answer ---------------------------------------------------------------

    def merge(
        self,
        ranked: Sequence[RankedSuggestion],
        patterns: Mapping[str, Pattern],
        now: datetime,
        limit: int,
    ) -> list[Suggestion]:
        """Fold a ranked answer into the store; returns the suggestions seen for the first time.

        At most `limit` are kept; open suggestions this run no longer supports are dropped, and
        decisions are kept.
        """
        new: list[Suggestion] = []
        kept: set[str] = set()
        usable = [r for r in ranked if r.duplicate_of is None and r.id in patterns]
        for item in usable[:limit]:
            kept.add(item.id)
            if (existing := self.suggestions.get(item.id)) is not None:
                existing.refresh(patterns[item.id], item, now)
                continue
            suggestion = Suggestion.from_pattern(patterns[item.id], item, now)
            self.suggestions[suggestion.id] = suggestion
            new.append(suggestion)
        for stale in [
            sid for sid, s in self.suggestions.items() if s.status is SuggestionStatus.NEW and sid not in kept
        ]:
            del self.suggestions[stale]
        return new

    # --- the user's decisions --------------------------------------------------------------

    def get(self, suggestion_id: str) -> Suggestion:
        """The stored suggestion, or a translated validation error."""
        if (suggestion := self.suggestions.get(suggestion_id)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_suggestion",
                translation_placeholders={"suggestion_id": suggestion_id},
            )
        return suggestion

    def _undecided(self, suggestion_id: str) -> Suggestion:
        suggestion = self.get(suggestion_id)
        if suggestion.status is SuggestionStatus.ACCEPTED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="already_accepted",
                translation_placeholders={"entity_id": suggestion.automation_entity_id or ""},
            )
        return suggestion

    async def async_accept(
        self, suggestion_id: str, *, enable: bool, describe: Callable[[Suggestion], str]
    ) -> Suggestion:
        """Create the suggestion's automation (off unless `enable`) and mark it accepted.

        `describe` gives the automation's description (why it was suggested, in the user's
        language); it replaces the engine's.
        """
        suggestion = self._undecided(suggestion_id)
        config = dict(suggestion.automation)
        config.setdefault("alias", suggestion.text[:200])
        config["description"] = describe(suggestion)
        config_id, entity_id = await async_create_automation(self._hass, config, enable=enable)
        suggestion.status = SuggestionStatus.ACCEPTED
        suggestion.automation_id = config_id
        suggestion.automation_entity_id = entity_id
        return await self._async_decided(suggestion, None)

    async def async_dismiss(self, suggestion_id: str) -> Suggestion:
        """Mark a suggestion dismissed for good."""
        suggestion = self._undecided(suggestion_id)
        suggestion.status = SuggestionStatus.DISMISSED
        return await self._async_decided(suggestion, None)

    async def async_snooze(self, suggestion_id: str, until: datetime) -> Suggestion:
        """Hide a suggestion until `until`."""
        suggestion = self._undecided(suggestion_id)
        if until <= dt_util.utcnow():
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="snooze_in_past",
                translation_placeholders={"until": until.isoformat()},
            )
        suggestion.status = SuggestionStatus.SNOOZED
        return await self._async_decided(suggestion, until)

    async def _async_decided(self, suggestion: Suggestion, snoozed_until: datetime | None) -> Suggestion:
        suggestion.snoozed_until = snoozed_until
        suggestion.decided_at = dt_util.utcnow()
        await self.async_save()
        return suggestion
