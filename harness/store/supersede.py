"""Which stored units are the same work as another: one rule for retiring the units a unit supersedes (the same work
under an id an older release gave it, or on local data since changed) and for adopting a unit an older release
named otherwise (store/adopt.py)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Iterable, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from harness.specs.work import task_work

if TYPE_CHECKING:
    from harness.store.store import ResultStore

COLS = ["unit_id", "settings"]


class Work(NamedTuple):
    rest: str  # the settings as the work they describe, without the data's path and the digests
    source: str | None  # data.source as the task gave it
    digest: str | None  # the local data's content (None: a Hub data set, or a row of a release before digests)


def work_of(settings: str) -> Work:
    """A row's settings as the work they describe: the task as the unit id counts it (`task_work`: description and
    inversion settings out; whether evidence ran in, so a grid over evidence.enabled is two units that must not retire
    each other), the data's path and content apart."""
    try:
        s = json.loads(settings)
        digest = s.pop("data_digest", None)
        s.pop("head_digest", None)
        source = None
        if isinstance(s.get("task"), dict):
            s["task"] = task_work(s["task"])
            source = (s["task"].get("data") or {}).pop("source", None)
        return Work(json.dumps(s, sort_keys=True), source, digest)
    except (json.JSONDecodeError, AttributeError, TypeError):
        return Work(settings, None, None)


def supersedes(new: Work, old: Work) -> bool:
    """Whether a unit of work `new` replaces a stored one of `old`: the same work on the same file (its content since
    changed, or not recorded by an older release) or on the same content (reached by another path)."""
    return new.rest == old.rest and (new.source == old.source or (new.digest is not None and new.digest == old.digest))


def retire_superseded(store: ResultStore, unit_id: str) -> list[str]:
    """Remove the units `unit_id` supersedes, done, failed or cut short (shards and heads only), in every table and
    the heads; returns their ids. Call once the unit is done, or has failed: then only units that failed too go (one
    work, one failure listed)."""
    same_names = unit_id.rsplit("-", 1)[0] + "-"  # ids are <task>-<card>-<hash>: the same work has the same names
    done = store.read("victims", columns=COLS, prefix=same_names).to_pylist()
    failed = store.read("failures", columns=COLS, prefix=same_names).to_pylist()
    if store.has("victims", unit_id):  # a failed unit has failures rows only: none stands beside the same work done
        mine = [r for r in done if r["unit_id"] == unit_id]
        rows = done + failed + unfinished(store, same_names, {r["unit_id"] for r in done + failed} | {unit_id})
    else:
        finished = {r["unit_id"] for r in done}
        mine, rows = [r for r in failed if r["unit_id"] == unit_id], [r for r in failed if r["unit_id"] not in finished]
    return _remove(store, _superseded(mine, rows, {unit_id}))


def retire_for(store: ResultStore, unit_ids: Iterable[str]) -> list[str]:
    """`retire_superseded` for every done unit of `unit_ids` (a sweep's plan) at once, the store's rows read once: a
    sweep whose units are all done still retires what a run cut short left beside them."""
    ids = set(unit_ids)
    done = store.read("victims", columns=COLS).to_pylist()
    failed = store.read("failures", columns=COLS).to_pylist()
    mine = [r for r in done if r["unit_id"] in ids]
    rows = done + failed + unfinished(store, "", {r["unit_id"] for r in done + failed} | ids)
    return _remove(store, _superseded(mine, rows, ids))


def _superseded(mine: list[dict], rows: list[dict], keep: set[str]) -> list[str]:
    works = {work_of(r["settings"]) for r in mine}
    return sorted({r["unit_id"] for r in rows if r["unit_id"] not in keep
                   and any(supersedes(w, work_of(r["settings"])) for w in works)})


def _remove(store: ResultStore, ids: list[str]) -> list[str]:
    from harness.store.store import safe_name

    for uid in ids:
        for f in store.root.glob(f"*/{safe_name(uid, 'unit_id')}*"):
            stem = f.name.rsplit(".", 1)[0]
            if f.is_file() and (stem == uid or stem.startswith(uid + "-")):
                f.unlink()
    return ids


def unfinished(store: ResultStore, prefix: str, known: set[str]) -> list[dict]:
    """(unit_id, settings) of the units with stored shards only, neither done nor failed (a run cut short, perhaps
    by an older release), read from their shards' rows; `known`: the ids not to read."""
    rows, seen = [], set()
    for f in store.files("shards", prefix):
        uid = re.sub(r"-(real|null)-s\d+$", "", f.name.rsplit(".", 1)[0])
        if uid in known or uid in seen:
            continue
        seen.add(uid)
        try:
            rows += pq.read_table(f, columns=COLS).to_pylist()[:1]
        except (pa.ArrowException, OSError):  # an unreadable stray is not this unit's to judge
            continue
    return rows
