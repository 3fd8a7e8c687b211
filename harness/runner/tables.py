"""Arrow <-> shard results for the runner's own tables (attack shards, failures; schemas in store/schemas.py)."""

from __future__ import annotations

import json
import traceback as tb
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from harness.attacks.base import AttackResult, RunRecord
from harness.store.schemas import SCHEMAS


def read_file(path: Path, table: str) -> pa.Table:
    return pq.read_table(path, schema=SCHEMAS[table])


def shard_table(base: dict, kind: str, job, result: AttackResult, compute_s: float, request: dict, node: str) -> pa.Table:
    m = len(result.candidates)
    lam = result.lambdas.double().reshape(m, -1) if m else torch.empty(0, 1)
    row = {
        **base,
        "victim": kind, "shard": job.index, "shard_seed": job.seed, "restarts": job.restarts,
        "n_runs": len(result.runs), "n_candidates": m, "compute_s": compute_s,
        "num_cpus": float(request.get("num_cpus", 0)), "num_gpus": float(request.get("num_gpus", 0)), "node": node,
        "candidates": result.candidates.float().tolist(),
        "labels": result.labels.long().tolist(),
        "lambdas": lam.tolist(),
        "run_ids": result.run_ids.long().tolist(),
        "runs": json.dumps([r.__dict__ for r in result.runs], default=float),
    }
    return pa.Table.from_pylist([row], schema=SCHEMAS["shards"])


def result_of(tbl: pa.Table, dim: int, params: dict) -> AttackResult:
    """A shard's AttackResult back from its one-row table (as written, or as read on resume)."""
    row = tbl.to_pylist()[0]
    lam = torch.tensor(row["lambdas"], dtype=torch.float32) if row["lambdas"] else torch.empty(0, 1)
    if lam.shape[1] == 1:  # one lambda per candidate (classification); (m, C) for regression
        lam = lam[:, 0]
    cands = torch.tensor(row["candidates"], dtype=torch.float32) if row["candidates"] else torch.empty(0, dim)
    runs = [RunRecord(**r) for r in json.loads(row["runs"])]
    return AttackResult(
        cands, torch.tensor(row["labels"], dtype=torch.long), lam, torch.tensor(row["run_ids"], dtype=torch.long),
        runs, params, wall_s=row["compute_s"] or 0.0, shards=[(row["restarts"], row["shard_seed"])],
        device=json.loads(row["versions"] or "{}").get("device", ""),  # the shard's process, as its provenance says
    )


def failure_table(base: dict, stage: str, exc: BaseException, kind: str | None = None, shard: int | None = None) -> pa.Table:
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError wraps the stage's own exception
    lines = str(cause).strip().splitlines() or [""]
    message = next((ln for ln in reversed(lines) if ln.strip()), lines[0])
    # a RayTaskError's own text carries the remote traceback; a local error has its own
    trace = str(exc) if cause is not exc else "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
    row = {**base, "stage": stage, "victim": kind, "shard": shard,
           "error_type": type(cause).__name__, "message": message[:2000], "traceback": trace[-8000:]}
    return pa.Table.from_pylist([row], schema=SCHEMAS["failures"])
