"""Filters that message templates apply to typed values, so a template's own words and
punctuation never double up with what the CMOC typed ("back to normal." + "." → "normal.")."""

from __future__ import annotations

# Marks that end or continue a clause, Latin and CJK (full-width) alike.
_MARKS = ".,;:!?…。．、，；：！？"


def clause(value: object) -> str:
    """A typed value to be continued by the template: without trailing punctuation."""
    return str(value).strip().rstrip(_MARKS + " ")


def sentence(value: object) -> str:
    """A typed value that ends a sentence: exactly one final mark ("normal." stays, "normal"
    gets one, "normal.." and "normal..." lose the extra dots; "?", "!" and "。" are kept)."""
    text = str(value).strip()
    core = text.rstrip(_MARKS + " ")
    if not core:
        return ""
    end = text[len(core):]
    for mark in ("!", "！", "?", "？", "。"):
        if mark in end:
            return core + mark
    return core + "."


def strip_lead(value: object, *phrases: str) -> str:
    """The value without a leading phrase the template already says ("We're seeing …"
    typed into the field that completes "We're seeing …")."""
    text = str(value).strip()
    for phrase in phrases:
        rest = text[len(phrase):]
        whole_words = not rest or not rest[0].isalnum()
        if text.lower().startswith(phrase.lower()) and whole_words:
            text = rest.lstrip(" :,.-").strip()
    return text
