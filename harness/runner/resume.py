"""What a rerun can reuse: trained heads (with their training record) and finished shards."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from harness.heads.io import load_head, save_head
from harness.heads.train import TrainReport
from harness.pipeline.stages import TrainedVictim
from harness.runner.work import Trained
from harness.store.store import ResultStore, atomic_write_bytes


def head_path(root: Path, unit_id: str, kind: str) -> Path:
    return root / "heads" / f"{unit_id}-{kind}.safetensors"


def save_trained(root: Path, unit_id: str, loss: str, trained: Trained) -> dict[str, str]:
    """Each victim's head (safetensors) and a JSON record beside it; returns head paths relative to root."""
    paths = {}
    for kind, v in trained.victims.items():
        path = head_path(root, unit_id, kind)
        save_head(v.head, path, {"unit_id": unit_id, "victim": kind, "loss": loss}, mean=trained.mean)
        record = {
            "report": asdict(v.report) if v.report else None,
            "labels": v.labels.tolist(),
            "test_acc": v.test_acc,
            "oracle_residual": v.oracle_residual,
            "train_s": trained.train_s.get(kind, 0.0),
        }
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(record).encode())
        paths[kind] = str(path.relative_to(root))
    return paths


def load_trained(root: Path, unit_id: str, kinds: tuple[str, ...]) -> tuple[Trained, dict[str, str]] | None:
    """The victims a previous run trained, or None if any is missing (then they are trained again)."""
    victims, times, mean, paths = {}, {}, None, {}
    for kind in kinds:
        path = head_path(root, unit_id, kind)
        if not (path.is_file() and path.with_suffix(".json").is_file()):
            return None
        head, _, mean = load_head(path)
        rec = json.loads(path.with_suffix(".json").read_text())
        report = TrainReport(**rec["report"]) if rec["report"] else None
        labels = torch.tensor(rec["labels"], dtype=torch.long)
        victims[kind] = TrainedVictim(kind, head, labels, report, rec["test_acc"], rec["oracle_residual"])
        times[kind] = rec["train_s"]
        paths[kind] = str(path.relative_to(root))
    return Trained(victims, times, mean), paths


def done_shards(store: ResultStore, unit_id: str, jobs: list) -> set[tuple[str, int]]:
    return {(kind, job.index) for kind, job in jobs if store.has("shards", unit_id, f"{kind}-{job.part}")}


def clear_failures(store: ResultStore, unit_id: str) -> None:
    folder = store.root / "failures"
    for f in [*folder.glob(f"{unit_id}.parquet"), *folder.glob(f"{unit_id}-*.parquet")]:
        f.unlink(missing_ok=True)
