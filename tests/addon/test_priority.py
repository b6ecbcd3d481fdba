"""Priority from evidence and impact, and the context read from a pattern's wording."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from homeiq_addon.models.pattern_context import (
    category_prior,
    context_from_text,
    merged_context,
    render_context,
)
from homeiq_addon.models.priority import assess_priority
from homeiq_addon.models.types import CATEGORIES, PRIORITIES, Evidence, PatternContext
from tests.addon.labelled_set import load_labelled_set

LOCK_TEXT = "Front door lock is locked around 22:40 every day"
LOCK = PatternContext(kind="time_of_day", trigger="time", domains=("lock",), action="locked")
FAN_TEXT = "Bathroom fan turns off by hand about 15 min after it turns on"
FAN = PatternContext(kind="duration", trigger="state", domains=("fan",), action="off")


def _evidence(days: int, eligible: int = 30, share: float | None = None) -> Evidence:
    share = days / eligible if share is None else share
    return Evidence(
        occurrences=days, support_days=days, eligible_days=eligible, coverage=share, precision=share
    )


def test_the_same_text_with_different_evidence_gets_different_priorities() -> None:
    often = assess_priority(FAN_TEXT, "energy", replace(FAN, evidence=_evidence(28)))
    seldom = assess_priority(FAN_TEXT, "energy", replace(FAN, evidence=_evidence(3)))
    assert often.priority == "high"
    assert seldom.priority == "low"
    assert often.scores["high"] > seldom.scores["high"]
    assert often.reason.startswith("Happens on 28 of 30 days")
    assert seldom.reason.startswith("Seen only on 3 of 30 days")


def test_inconsistent_evidence_lowers_the_priority() -> None:
    steady = assess_priority(FAN_TEXT, "energy", replace(FAN, evidence=_evidence(12, share=0.9)))
    erratic = assess_priority(FAN_TEXT, "energy", replace(FAN, evidence=_evidence(12, share=0.3)))
    assert PRIORITIES.index(steady.priority) < PRIORITIES.index(erratic.priority)
    assert "not consistently" in erratic.reason


def test_a_door_locked_at_night_outranks_a_light_switched_on_with_the_same_evidence() -> None:
    evidence = _evidence(15)
    lock = assess_priority(LOCK_TEXT, "security", replace(LOCK, evidence=evidence))
    light = assess_priority(
        "Desk lamp turns on around 08:30 on weekdays",
        "convenience",
        PatternContext(kind="time_of_day", domains=("light",), action="on", evidence=evidence),
    )
    assert lock.priority == "high" and light.priority == "low"
    assert lock.reason == "Happens on 15 of 30 days and guards against a door left unlocked at night"
    assert light.reason == "Happens on 15 of 30 days"


def test_something_left_on_for_hours_says_so() -> None:
    text = "Workshop heater turns off by hand about 240 min after it turns on"
    context = PatternContext(kind="duration", domains=("switch",), action="off", evidence=_evidence(8))
    result = assess_priority(text, "energy", context)
    assert "left on for about 4 hours" in result.reason
    assert result.priority == "medium"


def test_without_evidence_the_reason_says_it_was_judged_from_the_wording() -> None:
    result = assess_priority(LOCK_TEXT, "security", context_from_text(LOCK_TEXT))
    assert result.reason == (
        "No evidence sent; judged from the wording: it guards against a door left unlocked at night"
    )
    assert result.priority == "medium"
    assert sum(result.scores.values()) == pytest.approx(1.0)
    assert result.priority == max(result.scores, key=result.scores.__getitem__)


def test_priorities_spread_over_all_three_labels_on_the_labelled_set() -> None:
    patterns = [p for p in load_labelled_set() if p.context.evidence is not None]
    spread = Counter(assess_priority(p.text, p.category, p.context).priority for p in patterns)
    assert set(spread) == set(PRIORITIES)
    assert max(spread.values()) < 0.7 * len(patterns)  # no label takes (nearly) everything


@pytest.mark.parametrize(
    ("text", "domain", "action", "kind"),
    [
        (LOCK_TEXT, "lock", "locked", "time_of_day"),
        (FAN_TEXT, "fan", "off", "duration"),
        ("Garage door closes 20 min after sunset every day", "cover", "closed", "sun"),
        ("Hallway light turns on about 10 s after Front door opens", "light", "on", "sequence"),
        ("Lower the thermostat when everyone leaves", "climate", "eco", "presence"),
    ],
)
def test_the_wording_gives_away_domain_action_and_kind(
    text: str, domain: str, action: str, kind: str
) -> None:
    context = context_from_text(text)
    assert (context.domains, context.action, context.kind) == ((domain,), action, kind)


def test_a_sent_context_with_gaps_is_filled_from_the_wording() -> None:
    partial = PatternContext(evidence=_evidence(24, 34))
    merged = merged_context(LOCK_TEXT, partial)
    assert (merged.domains, merged.action, merged.evidence) == (("lock",), "locked", partial.evidence)
    sent = PatternContext(domains=("cover",), action="closed", device_classes=("garage",))
    assert merged_context(LOCK_TEXT, sent).domains == ("cover",)  # what was sent wins
    assert assess_priority(LOCK_TEXT, "security", merged).priority == "high"


def test_priors_favour_the_category_the_device_implies() -> None:
    def favourite(context: PatternContext) -> str:
        return CATEGORIES[int(category_prior(context).argmax())]

    assert favourite(LOCK) == "security"
    assert favourite(FAN) == "energy"
    assert favourite(PatternContext(domains=("climate",), action="eco")) == "energy"
    assert favourite(PatternContext(domains=("climate",), action="heat")) == "comfort"
    assert (
        favourite(PatternContext(domains=("cover",), device_classes=("garage",), action="closed"))
        == "security"
    )
    assert favourite(PatternContext(domains=("light",), action="on")) == "convenience"
    assert not category_prior(PatternContext()).any()  # an empty context is no evidence either way


def test_the_rendered_context_is_one_short_line() -> None:
    context = replace(LOCK, trigger_domains=("binary_sensor",), evidence=_evidence(24, 34))
    line = render_context(context)
    assert line == (
        "kind: time of day; trigger: time of binary_sensor; acts on: lock (locked); seen on 24 of 34 days"
    )
    assert render_context(PatternContext()) == ""
