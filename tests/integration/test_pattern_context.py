"""The context sent with each pattern (API 1.1): what the add-on's classifier reads besides the words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.homeiq.pattern_context import pattern_context
from custom_components.homeiq.patterns import HomeContext, StateChange, mine_patterns

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def _presence_home() -> list[StateChange]:
    events = []
    for day in range(21):
        left = NOW - timedelta(days=21 - day, hours=-6, minutes=(day * 37) % 180)  # 06:00-09:00
        events.append(StateChange("person.a", "not_home", left))
        events.append(StateChange("person.a", "home", left + timedelta(hours=9)))
        events.append(StateChange("lock.front_door", "locked", left + timedelta(minutes=2), user_id="u"))
        events.append(StateChange("lock.front_door", "unlocked", left + timedelta(hours=9, minutes=1)))
        evening = NOW - timedelta(days=21 - day, hours=-20, minutes=day % 5)
        events.append(StateChange("light.porch", "on", evening, user_id="u"))
        events.append(StateChange("light.porch", "off", evening + timedelta(hours=3)))
    return events


def test_a_presence_rule_says_what_it_acts_on_and_how_often() -> None:
    patterns = mine_patterns(_presence_home(), HomeContext("UTC"), now=NOW)
    [rule] = [p for p in patterns if p.kind == "sequence" and p.action["state"] == "locked"]
    context = pattern_context(rule, {"lock.front_door": "lock"})
    assert context["kind"] == "sequence"
    assert context["trigger"] == "presence"
    assert context["trigger_domains"] in (["person"], ["zone"])  # one person: leaving is the last leaving
    assert context["domains"] == ["lock"]
    assert context["action"] == "locked"
    assert context["targets"] == 1
    assert context["device_classes"] == ["lock"]
    assert context["evidence"]["support_days"] == rule.support_days
    assert context["evidence"]["eligible_days"] == rule.evidence.eligible_days
    assert 0.0 < context["evidence"]["precision"] <= 1.0


def test_a_clock_routine_has_a_time_trigger_and_no_trigger_domains() -> None:
    patterns = mine_patterns(_presence_home(), HomeContext("UTC"), now=NOW)
    routines = [pattern_context(p, {}) for p in patterns if p.kind == "time_of_day"]
    assert routines
    assert all(c["trigger"] == "time" and "trigger_domains" not in c for c in routines)
    assert all("device_classes" not in c for c in routines)
