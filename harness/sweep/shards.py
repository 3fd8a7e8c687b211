"""Attack shards: a unit's restarts split into groups, each a seeded attack of its own; merged by concatenation."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import torch

from harness.attacks.base import AttackResult


@dataclass(frozen=True)
class ShardJob:
    index: int
    restarts: int
    seed: int

    @property
    def part(self) -> str:
        return f"s{self.index:04d}"


def shard_seed(seed: int, index: int) -> int:
    """Shard 0 keeps the attack's seed; others get a stable, well-spread seed of their own."""
    if index == 0:
        return seed
    return int(hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:8], 16)


def shard_jobs(restarts: int, per_shard: int, seed: int) -> list[ShardJob]:
    n = -(-restarts // per_shard)
    return [ShardJob(i, min(per_shard, restarts - i * per_shard), shard_seed(seed, i)) for i in range(n)]


def shard_params(params: dict, job: ShardJob) -> dict:
    return {**params, "restarts": job.restarts, "seed": job.seed}


def merge(results: list[AttackResult], params: dict) -> AttackResult:
    """Concatenate shards in order; run ids are renumbered so they stay unique within the unit."""
    cands, labels, lams, ids, runs, offset, wall, layout = [], [], [], [], [], 0, 0.0, []
    for r in results:
        layout += r.layout()
        cands.append(r.candidates)
        labels.append(r.labels)
        lams.append(r.lambdas)
        ids.append(r.run_ids.long() + offset)
        runs += [dataclasses.replace(run, run_id=run.run_id + offset) for run in r.runs]
        offset += len(r.runs)
        wall += r.wall_s
    dim = next((c.shape[1] for c in cands if c.dim() == 2), 0)
    cat = lambda xs, empty: torch.cat([x for x in xs if len(x)]) if any(len(x) for x in xs) else empty  # noqa: E731
    return AttackResult(
        candidates=cat(cands, torch.empty(0, dim)),
        labels=cat(labels, torch.empty(0, dtype=torch.long)),
        lambdas=cat(lams, torch.empty(0)),
        run_ids=cat(ids, torch.empty(0, dtype=torch.long)),
        runs=runs,
        params=params,
        wall_s=wall,
        shards=layout,
        device=", ".join(sorted({r.device for r in results if r.device})),  # one, unless shards ran on unlike nodes
    )
