"""Units done under ids an older release gave them: found by what their rows record, and renamed to the ids this
release gives the same work, so that an upgrade does not recompute (and retire) what the store already holds."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from harness.store.store import ResultStore, atomic_write_bytes, safe_name
from harness.store.supersede import same_names, work_of


class DoneWork:
    """The store's done units and the work their rows record, read once (a sweep asks for every planned unit)."""

    def __init__(self, store: ResultStore):
        self.units: dict[str, list] = {}  # ids' <task>-<card>- -> [(created_at, unit id, Work, head digest)]
        for r in store.read("victims", columns=["unit_id", "settings", "created_at"]).to_pylist():
            entry = (r["created_at"], r["unit_id"], work_of(r["settings"]), json.loads(r["settings"]).get("head_digest"))
            self.units.setdefault(same_names(r["unit_id"]), []).append(entry)

    def same_work(self, unit_id: str, settings: dict) -> str | None:
        """The id of a unit done under another id whose rows record exactly the work of `unit_id` (its `settings`):
        the same task, card, revision and attack parameters, whether evidence ran, the same given head, and the same
        data: a local file's content by its digest (rows without one are not taken: the data may have changed since),
        a Hub data set by its id and revision. The latest such unit; None if there is none."""
        want = work_of(json.dumps(settings, sort_keys=True, default=str))
        found = [(at, uid) for at, uid, w, head in self.units.get(same_names(unit_id), [])
                 if uid != unit_id and w.rest == want.rest and head == settings.get("head_digest")
                 and w.digest == want.digest and (want.digest is not None or w.source == want.source)]
        return max(found)[1] if found else None


def adopt(store: ResultStore, old_id: str, new_id: str) -> None:
    """Rename a done unit: every table's rows of `old_id` (and its parts) get `new_id` (and the head paths they name),
    its heads' files the new name; failures stored under `new_id` (an earlier night's) go. The victims file moves last
    (it marks the unit done): cut short, the unit is not done under the new id, and the rerun that computes it
    retires what is left under the old one."""
    old_name, new_name = safe_name(old_id, "unit_id"), safe_name(new_id, "unit_id")
    store.remove_unit("failures", new_id)
    files = sorted(store.unit_files(old_id), key=lambda f: f.parent.name == "victims")
    for f in files:
        target = f.with_name(new_name + f.name[len(old_name):])
        if f.suffix == ".parquet":  # every table's rows name their unit (the shards' too, whose schema lives elsewhere)
            t = pq.read_table(f)
            for col, value in (("unit_id", lambda v: new_id), ("head_path", lambda v: v and v.replace(old_name, new_name))):
                if col in t.column_names:
                    i = t.schema.get_field_index(col)
                    t = t.set_column(i, t.schema.field(i), pa.array([value(v) for v in t.column(col).to_pylist()], pa.string()))
            sink = pa.BufferOutputStream()
            pq.write_table(t, sink, compression="zstd")
            atomic_write_bytes(target, sink.getvalue().to_pybytes())
            f.unlink()
        else:
            f.replace(target)


def adopt_all(store: ResultStore, units) -> list[tuple[str, str]]:
    """For each (unit id, settings) not done in `store`: the same work done under another id, adopted. Returns the
    (old id, new id) pairs."""
    moved, done = [], DoneWork(store)
    for unit_id, settings in units:
        if not store.has("victims", unit_id):
            old = done.same_work(unit_id, settings)
            if old and old not in {o for o, _ in moved}:
                adopt(store, old, unit_id)
                moved.append((old, unit_id))
    return moved
