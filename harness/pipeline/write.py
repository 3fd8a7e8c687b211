"""Where a unit's results go: its victims' heads, and its tables in the one order that marks it done. `run`
(unit.py: save_unit) and the Ray driver (runner/driver.py) both write through here."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from harness.heads.io import save_head
from harness.store.store import ResultStore
from harness.store.supersede import StoredWork, retire_superseded

if TYPE_CHECKING:
    from harness.pipeline.plan import Unit
    from harness.pipeline.unit import Trained

# Every result table a unit writes, in writing order: the victims table last (it marks the unit done).
TABLES = ("candidates", "attack_runs", "matches", "selections", "selection_scores", "inversions", "victims")


def head_path(root: Path, unit_id: str, kind: str) -> Path:
    """Where a unit's victim head is saved (the one place that names it)."""
    return Path(root) / "heads" / f"{unit_id}-{kind}.safetensors"


def save_heads(root: Path, unit: Unit, trained: Trained) -> dict[str, str]:
    """Each victim's head with its frame (safetensors); returns paths relative to root. A training record beside the
    head it replaces (a sweep's, which `runner/resume.py` writes and reads back) goes: it described that head."""
    paths = {}
    for kind, v in trained.victims.items():
        path = head_path(root, unit.unit_id, kind)
        path.with_suffix(".json").unlink(missing_ok=True)
        meta = {"unit_id": unit.unit_id, "victim": kind, "loss": unit.task.head.loss, "recipe": v.recipe.label}
        save_head(v.head, path, meta, frame=v.frame)
        paths[kind] = str(path.relative_to(root))
    return paths


def write_unit(store: ResultStore, unit_id: str, tables: dict[str, list[dict] | pa.Table],
               keep_shards: Iterable[str] = (), stored: StoredWork | None = None) -> dict[str, int]:
    """The unit's tables in order (the victims table last marks it done; its old one goes first, and its failures),
    then what no longer stands beside them: its shard files other than `keep_shards` (a sweep's, whose rows these
    are; `run` keeps none) and the units it supersedes (found in `stored`, a sweep's index of the store read once,
    or else in the store's units of its task and card). Returns the row count per table."""
    unmark_done(store, unit_id)
    store.remove_unit("failures", unit_id)  # before the unit is marked done: no failure outlives it
    for name in TABLES:
        if name in tables:
            store.write(name, unit_id, tables[name])
    store.remove_parts("shards", unit_id, keep_shards)
    if stored is not None:
        stored.retire(store, unit_id)
    else:
        retire_superseded(store, unit_id)
    return {name: len(t) for name, t in tables.items()}


def unmark_done(store: ResultStore, unit_id: str) -> None:
    """A unit about to be rewritten (`run` into a results directory that has it) stops counting as done first, so
    that a rewrite cut short (an interrupt, a full disk) leaves a unit to do, not one done with two runs' tables."""
    store.path("victims", unit_id).unlink(missing_ok=True)
