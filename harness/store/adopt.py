"""Units done under ids an older release gave them: found by what their rows record, and renamed to the ids this
release gives the same work, so that an upgrade does not recompute (and retire) what the store already holds."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from harness.store.store import ResultStore, _work, atomic_write_bytes, safe_name


def same_work_done(store: ResultStore, unit_id: str, settings: dict) -> str | None:
    """The id of a unit done under another id whose rows record exactly the work of `unit_id` (its `settings`): the
    same task, card, revision and attack parameters, whether evidence ran, and the same digests of its local data and
    given head (rows without them are not taken: the data may have changed since). None if there is none."""
    names = unit_id.rsplit("-", 1)[0] + "-"  # ids are <task>-<card>-<hash>
    text = json.dumps(settings, sort_keys=True, default=str)
    want, digests = _work(text), (settings.get("data_digest"), settings.get("head_digest"))
    for r in store.read("victims", columns=["unit_id", "settings"], prefix=names).to_pylist():
        if r["unit_id"] == unit_id:
            continue
        s = json.loads(r["settings"])
        if (s.get("data_digest"), s.get("head_digest")) == digests and _work(r["settings"]) == want:
            return r["unit_id"]
    return None


def adopt(store: ResultStore, old_id: str, new_id: str) -> None:
    """Rename a done unit: every table's rows of `old_id` (and its parts) get `new_id`, its heads' files the new name.
    The victims file moves last (it marks the unit done): cut short, the unit is not done under the new id, and
    the rerun that computes it retires what is left under the old one."""
    old_name, new_name = safe_name(old_id, "unit_id"), safe_name(new_id, "unit_id")
    files = [f for f in store.root.glob(f"*/{old_name}*") if f.is_file() and _of_unit(f.name, old_name)]
    files.sort(key=lambda f: f.parent.name == "victims")
    for f in files:
        target = f.with_name(new_name + f.name[len(old_name):])
        if f.suffix == ".parquet":  # every table's rows name their unit (the shards' too, whose schema lives elsewhere)
            t = pq.read_table(f)
            i = t.schema.get_field_index("unit_id")
            t = t.set_column(i, t.schema.field(i), pa.array([new_id] * t.num_rows, pa.string()))
            sink = pa.BufferOutputStream()
            pq.write_table(t, sink, compression="zstd")
            atomic_write_bytes(target, sink.getvalue().to_pybytes())
            f.unlink()
        else:
            f.replace(target)


def _of_unit(filename: str, name: str) -> bool:
    stem = filename.rsplit(".", 1)[0]
    return stem == name or stem.startswith(name + "-")


def adopt_all(store: ResultStore, units) -> list[tuple[str, str]]:
    """For each (unit id, settings) not done in `store`: the same work done under another id, adopted. Returns the
    (old id, new id) pairs."""
    moved = []
    for unit_id, settings in units:
        if not store.has("victims", unit_id):
            old = same_work_done(store, unit_id, settings)
            if old:
                adopt(store, old, unit_id)
                moved.append((old, unit_id))
    return moved
