"""Attack runs end on their iteration budget; an opt-in time budget that cuts a run says so in its row."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from harness.attacks import make_attack
from harness.attacks.base import Victim
from harness.heads.mlp import MLPHead
from harness.store.schemas import SCHEMAS


def _victim() -> Victim:
    torch.manual_seed(0)
    head = MLPHead([6, 16, 1], bias="first")
    mean = torch.zeros(6)
    if "frame" in {f.name for f in dataclasses.fields(Victim)}:
        from harness.victims.frame import Frame

        return Victim(head, "logistic", 2, Frame(mean), typical_norm=1.0)
    return Victim(head, "logistic", 2, mean, typical_norm=1.0)


@pytest.mark.parametrize("name,params", [
    ("kkt", {"m": 4, "restarts": 4, "iterations": 40, "rungs": 1}),
    ("kkt-reference", {"m": 4, "restarts": 2, "iterations": 40, "lr": 1e-4}),
])
def test_runs_stop_on_their_iteration_budget_by_default(name, params):
    res = make_attack(name, params).reconstruct(_victim(), progress=False)
    for r in res.runs:
        assert r.stopped_by == ("iterations" if r.status == "ok" else r.status), r
        assert r.status != "ok" or r.iterations == params["iterations"]
    assert any(r.stopped_by == "iterations" for r in res.runs)


@pytest.mark.parametrize("name,params", [
    ("kkt", {"m": 4, "restarts": 4, "iterations": 10_000_000, "rungs": 0}),
    ("kkt-reference", {"m": 4, "restarts": 3, "iterations": 10_000_000, "lr": 1e-4}),
])
def test_a_time_budget_that_cuts_a_run_is_recorded_on_it(name, params):
    res = make_attack(name, {**params, "time_budget_s": 0.3}).reconstruct(_victim(), progress=False)
    cut = [r for r in res.runs if r.stopped_by == "time_budget"]
    assert cut and all(r.status == "ok" and r.iterations < params["iterations"] for r in cut)


@pytest.mark.parametrize("name,params", [
    ("kkt", {"m": 4, "restarts": 4, "iterations": 50, "rungs": 2}),
    ("kkt-reference", {"m": 4, "restarts": 3, "iterations": 50, "lr": 1e-4}),
])
def test_a_budget_spent_before_the_first_iteration_still_gives_candidates(name, params):
    """The set-up (row space, lambda fit) can outlast a small budget; the first restarts still run one
    iteration and say the budget cut them, instead of returning no runs at all."""
    res = make_attack(name, {**params, "time_budget_s": 1e-9}).reconstruct(_victim(), progress=False)
    assert res.runs and all(r.stopped_by == "time_budget" and r.iterations == 1 for r in res.runs)
    assert len(res.candidates) == params["m"] * len(res.runs)


def test_attack_runs_schema_has_a_nullable_stopped_by_and_old_files_still_read(tmp_path):
    field = SCHEMAS["attack_runs"].field("stopped_by")
    assert field.nullable and field.type == pa.string()
    old = pa.schema([f for f in SCHEMAS["attack_runs"] if f.name != "stopped_by"])
    pq.write_table(old.empty_table(), tmp_path / "old.parquet")
    assert pq.read_table(tmp_path / "old.parquet", schema=SCHEMAS["attack_runs"]).column_names == SCHEMAS["attack_runs"].names
