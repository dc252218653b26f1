"""Audit entries as people read them: the fields that changed, each value written out plainly
(text as typed, lists comma-separated, nested settings as dotted names), never raw JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    field: str
    kind: str                # changed | set (only an after value) | removed (only a before value)
    before: str | None
    after: str | None


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars stay as they are."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            flat.update(flatten(item, name + "."))
        else:
            flat[name] = item
    return flat


def readable(value: Any) -> str:
    """One value in plain words: yes/no, empty, comma-separated lists, text unescaped."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value if value.strip() else "(empty)"
    if isinstance(value, list | tuple):
        if not value:
            return "(none)"
        if all(isinstance(v, str | int | float | bool) or v is None for v in value):
            return ", ".join(readable(v) for v in value)
    if isinstance(value, dict) and not value:
        return "(none)"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def audit_changes(before: dict[str, Any] | None, after: dict[str, Any] | None
                  ) -> list[FieldChange]:
    """The fields of an entry: changed ones with both values, new ones, removed ones. Fields
    present on both sides with the same value are left out."""
    old, new = flatten(before or {}), flatten(after or {})
    changes = []
    for key in dict.fromkeys([*old, *new]):
        label = key.replace("_", " ")
        if key in old and key in new:
            if old[key] != new[key]:
                changes.append(FieldChange(label, "changed", readable(old[key]),
                                           readable(new[key])))
        elif key in new:
            changes.append(FieldChange(label, "set", None, readable(new[key])))
        else:
            changes.append(FieldChange(label, "removed", readable(old[key]), None))
    return changes
