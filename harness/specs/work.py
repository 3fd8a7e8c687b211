"""What counts as a unit's work in a dumped task: one rule for the unit id, for retiring superseded rows and for the
leaderboard's settings."""

from __future__ import annotations

from harness.invert.recipe import selection_settings


def task_work(task: dict) -> dict:
    """`task` (a TaskSpec dump) as the work it names, a new dict: the description (text about the work) out, and of
    the evidence settings only those that change a row: selection's (select_*, min_cosine) and whether evidence runs
    at all. Inversion's (invert_*, word_*, dip_*, corpus) steer a view of the unit's candidates; a sweep never inverts."""
    out = {k: v for k, v in task.items() if k != "description"}
    if "evidence" in out:
        ev = out.pop("evidence") or {}
        kept = selection_settings(ev) | ({"enabled": ev["enabled"]} if "enabled" in ev else {})
        out |= {"evidence": kept} if kept else {}
    return out
