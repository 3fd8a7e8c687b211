"""Nested settings as dotted FIELD -> value, which fields several settings differ in, and a field's value as a label
shows it (the leaderboard's setting labels, the report's unit headings)."""

from __future__ import annotations

import json


def flat_fields(d: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted FIELD -> value."""
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat_fields(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differing_fields(flats: list[dict[str, object]]) -> list[str]:
    """The dotted fields (sorted) whose values are not the same in all of `flats` (absent counts as a value)."""
    paths = sorted({p for f in flats for p in f})
    return [p for p in paths if len({json.dumps(f.get(p, "<absent>"), sort_keys=True, default=str) for f in flats}) > 1]


def field_value(v) -> str:
    """A field's value in a label: strings bare, floats short, a list of plain values as [a,b], anything else JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v):
        return "[" + ",".join(map(field_value, v)) + "]"
    return json.dumps(v, separators=(",", ":"), default=str)
