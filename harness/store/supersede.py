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


class StoredWork:
    """The store's units (done, failed, cut short) and the work their rows record, read once: what a unit supersedes
    is then found without reading the store again (a sweep finishes thousands of units of one task and card: reading
    their rows at each finish cost 2.4 s a unit at 1,000 units). The caller holds the store's lock: no other process
    writes it meanwhile, and the units this index retires or records are kept up to date here."""

    def __init__(self, store: ResultStore, prefix: str = ""):
        done = store.read("victims", columns=COLS, prefix=prefix).to_pylist()
        failed = store.read("failures", columns=COLS, prefix=prefix).to_pylist()
        known = {r["unit_id"] for r in done + failed}
        self.done: dict[str, set[Work]] = _works(done)
        self.failed: dict[str, set[Work]] = _works(r for r in failed if r["unit_id"] not in self.done)
        self.cut: dict[str, set[Work]] = _works(unfinished(store, prefix, known))

    def retire(self, store: ResultStore, unit_id: str) -> list[str]:
        """Remove the units `unit_id` supersedes, done, failed or cut short (shards and heads only), in every table and
        the heads; returns their ids. Call once the unit is done, or has failed: then only units that failed too go
        (one work, one failure listed)."""
        done = store.has("victims", unit_id)  # a failed unit has failures rows only: none stands beside the same work done
        mine = _works(store.read("victims" if done else "failures", columns=COLS, prefix=unit_id).to_pylist())
        works = mine.get(unit_id, set())
        gone = self.superseded(works, {unit_id}, (self.done, self.failed, self.cut) if done else (self.failed,))
        for pool in (self.done, self.failed, self.cut):
            for uid in gone + [unit_id]:
                pool.pop(uid, None)
        (self.done if done else self.failed)[unit_id] = works
        return _remove(store, gone)

    def superseded(self, works: set[Work], keep: set[str], pools: tuple[dict, ...]) -> list[str]:
        """The ids in `pools` (this index's done, failed, cut-short units) whose work one of `works` supersedes."""
        return sorted({uid for pool in pools for uid, ws in pool.items() if uid not in keep
                       and any(supersedes(new, old) for new in works for old in ws)})


def _works(rows: Iterable[dict]) -> dict[str, set[Work]]:
    out: dict[str, set[Work]] = {}
    for r in rows:
        out.setdefault(r["unit_id"], set()).add(work_of(r["settings"]))
    return out


def retire_superseded(store: ResultStore, unit_id: str) -> list[str]:
    """`StoredWork.retire` for one unit, reading only the units of its task and card (ids are <task>-<card>-<hash>:
    the same work has the same names)."""
    return StoredWork(store, same_names(unit_id)).retire(store, unit_id)


def same_names(unit_id: str) -> str:
    """The id prefix the same work shares: ids are <task>-<card>-<hash>."""
    return unit_id.rsplit("-", 1)[0] + "-"


def retire_for(store: ResultStore, unit_ids: Iterable[str]) -> list[str]:
    """`retire_superseded` for every done unit of `unit_ids` (a sweep's plan) at once, the store's rows read once: a
    sweep whose units are all done still retires what a run cut short left beside them."""
    ids = set(unit_ids)
    index = StoredWork(store)
    works = set().union(*(ws for uid, ws in index.done.items() if uid in ids))
    return _remove(store, index.superseded(works, ids, (index.done, index.failed, index.cut)))


def _remove(store: ResultStore, ids: list[str]) -> list[str]:
    for uid in ids:
        for f in store.unit_files(uid):
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
