"""Label definitions and the flan-t5 prompts that carry them."""

from __future__ import annotations

from typing import Final

from .pattern_context import render_context
from .types import CATEGORIES, PRIORITIES, PatternContext

CATEGORY_DEFINITIONS: Final[dict[str, str]] = {
    "energy": "saves electricity, heating or water, e.g. turning things off when nobody needs them",
    "security": "protects the home, e.g. locks, alarms, cameras, doors and windows, presence simulation",
    "comfort": "makes the home pleasant, e.g. temperature, lighting mood, air quality, music",
    "convenience": "saves the user a routine manual step, e.g. switching the same device at the same time",
}

PRIORITY_DEFINITIONS: Final[dict[str, str]] = {
    "high": "the user does this very often or it prevents waste or risk",
    "medium": "a regular habit that would help now and then",
    "low": "rare or minor, nice to have",
}

assert tuple(CATEGORY_DEFINITIONS) == CATEGORIES
assert tuple(PRIORITY_DEFINITIONS) == PRIORITIES


def _suggestion_lines(text: str, context: PatternContext | None) -> str:
    line = f"Home automation suggestion: {text}\n"
    rendered = render_context(context) if context is not None else ""
    return f"{line}Details: {rendered}\n" if rendered else line


def category_prompt(text: str, context: PatternContext | None = None) -> str:
    """The flan-t5 question that defines the category labels for one pattern text.

    With a context, one more line renders it ("Details: kind: sequence; acts on: lock (locked)").
    """
    defs = "\n".join(f"- {label}: {desc}" for label, desc in CATEGORY_DEFINITIONS.items())
    return (
        f"{_suggestion_lines(text, context)}"
        f"Categories:\n{defs}\n"
        "Which category fits the suggestion best? Answer with one word."
    )


def priority_prompt(text: str, context: PatternContext | None = None) -> str:
    """The flan-t5 question that defines the priority labels for one pattern text."""
    defs = "\n".join(f"- {label}: {desc}" for label, desc in PRIORITY_DEFINITIONS.items())
    return (
        f"{_suggestion_lines(text, context)}"
        f"Priorities:\n{defs}\n"
        "Which priority fits the suggestion best? Answer with one word."
    )
