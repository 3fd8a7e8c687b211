"""Victims rows as a sweep writes them, and a small results directory of them, for the leaderboard tests."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

import harness.runner.tables  # noqa: F401 - registers the shards table
from harness.specs.task import TaskSpec
from harness.store import ResultStore
from tests.test_sweep import TASK


def _victim(model, seed, kind, passed, wd=0.0, tpr=None, victim=None):
    task = TaskSpec(**{**TASK, "seed": seed, "head": {**TASK["head"], "weight_decay": wd}, **({"victim": victim} if victim else {})})
    uid = f"u-{model}-{seed}-{wd}" + (f"-{task.victim.transform}-{task.victim.trainer}" if victim else "")
    return uid, {
        "unit_id": uid, "task": task.name, "model": model, "model_id": f"org/{model}", "revision": "a" * 40,
        "weights_source": "hub-cache", "seed": seed,
        "settings": json.dumps({"task": task.model_dump(mode="json"), "card": {}, "revision": "a" * 40}),
        "versions": '{"torch": "2.13.0"}', "created_at": datetime(2026, 1, 1 + seed, tzinfo=timezone.utc),
        "victim": kind, "n_members": 4, "members_passed": passed, "tpr_at_fpr": tpr if tpr is not None else passed / 4,
        "fpr": 0.01, "good_at_0_8": passed, "good_at_0_9": passed // 2, "test_acc": 0.9, "n_runs": 3,
        "good_ssim": passed - 1 if model == "vit" else None,  # only pixel victims have an SSIM score
        # the public floor, by cosine for every victim and by SSIM for the pixel ones (which the leaderboard then shows)
        "public_good_at_0_8": 0, "good_at_0_8_beyond_public": passed,
        "public_good_ssim": 1 if model == "vit" else None, "good_ssim_beyond_public": max(passed - 2, 0) if model == "vit" else None,
        # what the first half of the brackets found: one fewer than the whole search, by each victim's rule
        "good_at_0_8_first_half": max(passed - 1, 0), "good_ssim_first_half": max(passed - 2, 0) if model == "vit" else None,
    }


@pytest.fixture
def results(tmp_path) -> Path:
    store = ResultStore(tmp_path / "res")
    for model, passed in (("vit", [4, 2]), ("bert", [1, 1])):
        for seed in (0, 1):
            uid, real = _victim(model, seed, "real", passed[seed])
            _, null = _victim(model, seed, "null", 0)
            store.write("victims", uid, [real, null])
            base = {k: real[k] for k in ("unit_id", "task", "model", "model_id", "revision", "seed", "settings", "versions", "created_at")}
            store.write("shards", uid, [{**base, "victim": "real", "shard": 0, "shard_seed": 0, "restarts": 3,
                                         "compute_s": 1800.0, "num_cpus": 1.0, "num_gpus": 0.5}], "real-s0000")
            store.write("selection_scores", uid, [  # top-20 precision 0.5 / 0.7 by seed; the baseline 0.25; k=10 and null ignored
                {**base, "victim": kind, "strategy": strategy, "k": k, "precision": p}
                for kind, strategy, k, p in (("real", "cluster", 20, 0.5 + 0.2 * seed), ("real", "lowest-loss", 20, 0.25),
                                             ("real", "cluster", 10, 0.9), ("null", "cluster", 20, 0.0))
            ])
    uid, other = _victim("vit", 0, "real", 3, wd=0.01)  # another setting of the same model: its own row
    store.write("victims", uid, [other])
    return tmp_path / "res"
