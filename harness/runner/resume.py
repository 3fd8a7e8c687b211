"""What a rerun can reuse: trained victims (head, frame and training record) and finished shards."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from harness.heads.io import load_head
from harness.heads.train import TrainReport
from harness.pipeline.plan import Unit
from harness.pipeline.unit import Trained
from harness.pipeline.write import head_path, save_heads
from harness.store.store import ResultStore, atomic_write_bytes
from harness.victims.build import TrainedVictim
from harness.victims.spec import VictimSpec


def save_trained(root: Path, unit: Unit, trained: Trained) -> dict[str, str]:
    """Each victim's head with its frame (safetensors) and a JSON record beside it; returns head paths relative to root."""
    paths = save_heads(root, unit, trained)
    for kind, v in trained.victims.items():
        record = {
            "report": asdict(v.report) if v.report else None,
            "labels": v.labels.tolist(),
            "test_acc": v.test_acc,
            "oracle_residual": v.oracle_residual,
            "recipe": v.recipe.model_dump(mode="json"),
            "info": v.info,
            "active_share": v.active_share,
            "effective_members": v.effective_members,
            "in_row_space": v.in_row_space,
            "own_pattern": v.own_pattern,
            "train_s": trained.train_s.get(kind, 0.0),
        }
        atomic_write_bytes(head_path(root, unit.unit_id, kind).with_suffix(".json"), json.dumps(record, default=float).encode())
    return paths


def trained_saved(root: Path, unit_id: str, kinds: tuple[str, ...]) -> bool:
    """Whether every victim of the unit was saved (its head and the record beside it)."""
    return all(head_path(root, unit_id, k).is_file() and head_path(root, unit_id, k).with_suffix(".json").is_file()
               for k in kinds)


def load_trained(root: Path, unit_id: str, kinds: tuple[str, ...]) -> tuple[Trained, dict[str, str]] | None:
    """The victims a previous run trained, or None if any is missing (then they are trained again)."""
    if not trained_saved(root, unit_id, kinds):
        return None
    out, paths = Trained({}), {}
    for kind in kinds:
        path = head_path(root, unit_id, kind)
        head, _, frame = load_head(path)
        rec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if frame is None or "recipe" not in rec:
            return None  # written before heads carried their frame: train again rather than guess it
        report = TrainReport(**rec["report"]) if rec["report"] else None
        labels = torch.tensor(rec["labels"], dtype=torch.long)
        out.victims[kind] = TrainedVictim(kind, head, frame, labels, report, rec["test_acc"], rec["oracle_residual"],
                                          VictimSpec(**rec["recipe"]), rec["info"], rec["active_share"],
                                          rec.get("effective_members"), rec.get("in_row_space"),
                                          rec.get("own_pattern"))  # None in records written before them
        out.train_s[kind] = rec["train_s"]
        paths[kind] = str(path.relative_to(root))
    return out, paths


def reusable_shards(store: ResultStore, pu) -> int:
    """How many of a planned unit's shards a resume will take from the store: its finished shards, once its trained
    victims are there to go with them (the driver's own rule in `_admit`)."""
    if not trained_saved(store.root, pu.unit_id, pu.kinds):
        return 0
    return len(done_shards(store, pu.unit_id, pu.jobs()))


def done_shards(store: ResultStore, unit_id: str, jobs: list) -> set[tuple[str, int]]:
    """The jobs whose shard the store holds as the same work (its restarts and seed): a shard cut to another size
    (the sweep's restarts_per_shard changed between runs) is computed again, not merged as it is."""
    import pyarrow.parquet as pq

    done = set()
    for kind, job in jobs:
        path = store.path("shards", unit_id, f"{kind}-{job.part}")
        if path.is_file():
            rows = pq.read_table(path, columns=["restarts", "shard_seed"]).to_pylist()
            if rows and (rows[0]["restarts"], rows[0]["shard_seed"]) == (job.restarts, job.seed):
                done.add((kind, job.index))
    return done

