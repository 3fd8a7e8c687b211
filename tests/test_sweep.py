"""Sweep specs and plans, without Ray: grid expansion, stable ids, shards, Hub queries, bad input."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
import torch
import yaml

from harness.attacks.base import AttackResult, RunRecord
from harness.cli import main
from harness.errors import HarnessError
from harness.sweep import hub as hubmod
from harness.sweep import load_sweep, plan_sweep
from harness.sweep.shards import merge, shard_jobs
from tests.conftest import CIFAR, ROOT

TINY_ATTACK = {"name": "kkt-reference", "params": {"m": 4, "restarts": 3, "iterations": 5, "lr": 1e-4, "init_scale": 0.01, "lambda_min": 0.1, "alpha": 20}}
TASK = {
    "name": "tiny-cifar", "model": "identity",
    "data": {"source": str(CIFAR), "format": "parquet", "input_column": "img", "label_column": "label"},
    "classes": ["airplane", "automobile"], "per_class": 2, "nonmembers": 6,
    "head": {"widths": [16], "optimizer": "adam", "lr": 0.01, "max_steps": 50}, "attack": TINY_ATTACK,
}


def write_sweep(tmp_path, name="s", **over) -> str:
    spec = {"models": ["identity"], "tasks": [TASK], "grid": {"seed": [0, 1]}, "restarts_per_shard": 2, **over}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(spec))
    return str(p)


def ids(path) -> list[str]:
    return [pu.unit_id for pu in plan_sweep(load_sweep(path), path).units()]


def test_grid_expands_to_stable_ids_and_shards(tmp_path):
    path = write_sweep(tmp_path, grid={"seed": [0, 1], "head.widths": [[16], [8]], "attack.params.m": [4, 6]})
    plan = plan_sweep(load_sweep(path), path)
    units = list(plan.units())
    assert plan.n_units == len(units) == 8 and len(set(u.unit_id for u in units)) == 8
    assert ids(path) == [u.unit_id for u in units]  # same inputs, same ids, same order
    u = units[0]
    assert [(j.index, j.restarts) for j in u.shards] == [(0, 2), (1, 1)] and u.kinds == ("real", "null")
    assert len(u.jobs()) == 4 and u.shards[0].seed == 0 and u.shards[1].seed != 0
    # one changed value changes exactly the units that use it
    other = write_sweep(tmp_path, name="t", grid={"seed": [0, 1], "head.widths": [[16], [8]], "attack.params.m": [4, 7]})
    assert len(set(ids(other)) & set(ids(path))) == 4
    # a task's description is text about the work: editing it keeps every id (it recomputed, and pooled, them twice)
    described = write_sweep(tmp_path, name="d", tasks=[{**TASK, "description": "an edited description"}],
                            grid={"seed": [0, 1], "head.widths": [[16], [8]], "attack.params.m": [4, 6]})
    assert ids(described) == ids(path)


def test_a_data_file_changed_in_place_gives_its_units_new_ids(tmp_path):
    """A sweep took the units of an edited data file as done: the id hashes the local data's content (not its
    file times: a copy or a fresh clone of the same bytes keeps the ids)."""
    import os
    import shutil

    import pyarrow.parquet as pq

    data = tmp_path / "data.parquet"
    shutil.copy(CIFAR, data)
    path = write_sweep(tmp_path, tasks=[{**TASK, "data": {**TASK["data"], "source": str(data)}}])
    before = ids(path)
    os.utime(data, ns=(0, 0))
    assert ids(path) == before  # touched, same bytes
    table = pq.read_table(CIFAR)
    pq.write_table(table.take(list(range(table.num_rows))[::-1]), data)  # the same rows, in another order
    after = ids(path)
    assert len(after) == len(before) and not set(after) & set(before)
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    shutil.copy(data, elsewhere / "copy.parquet")  # the same bytes under another name, reached by a relative path
    again = write_sweep(elsewhere, tasks=[{**TASK, "data": {**TASK["data"], "source": "copy.parquet"}}])
    assert ids(again) == after  # one content, one unit (two paths made two units of the same work)


def test_sweep_unit_id_matches_a_plain_run(tmp_path):
    from harness.pipeline.plan import plan_unit
    from harness.registry import MODELS
    from harness.specs.task import TaskSpec

    path = write_sweep(tmp_path, grid={})
    (pu,) = plan_sweep(load_sweep(path), path).units()
    unit, _ = plan_unit(TaskSpec(**TASK), MODELS.get("identity"))
    assert pu.unit_id == unit.unit_id


def test_unit_id_ignores_settings_left_at_their_defaults():
    # a release that adds a setting must not rerun a resumed store's finished units: only stated values count
    from harness.pipeline.plan import plan_unit
    from harness.registry import MODELS
    from harness.specs.task import TaskSpec

    class Later(TaskSpec):  # the same task spec with one more setting, as a later release might add
        new_setting: int = 3

    card = MODELS.get("identity")
    today, _ = plan_unit(TaskSpec(**TASK), card)
    assert plan_unit(Later(**TASK), card)[0].unit_id == today.unit_id
    assert plan_unit(TaskSpec(**TASK, fpr=0.01), card)[0].unit_id == today.unit_id  # a default stated is the default
    assert plan_unit(Later(**TASK, new_setting=4), card)[0].unit_id != today.unit_id
    assert plan_unit(TaskSpec(**TASK, fpr=0.05), card)[0].unit_id != today.unit_id


def test_inversion_settings_leave_the_unit_id_and_selection_settings_change_it():
    """A sweep never inverts and no leaderboard column reads an inversion: changing word_beam recomputed every
    unit of a sweep. Selection settings, and evidence turned off, are other work."""
    from harness.pipeline.plan import plan_unit
    from harness.registry import MODELS
    from harness.specs.task import TaskSpec

    card = MODELS.get("identity")
    uid = lambda **ev: plan_unit(TaskSpec(**TASK, evidence=ev), card)[0].unit_id  # noqa: E731
    today = plan_unit(TaskSpec(**TASK), card)[0].unit_id
    assert uid(word_beam=4, invert_top=3, dip_steps=10, corpus=["x.parquet"]) == today
    assert uid(min_cosine=0.8) != today and uid(select_method="dbscan") != today and uid(enabled=False) != today


def test_a_units_settings_record_the_attacks_defaults_and_its_id_only_what_is_stated():
    from harness.pipeline.plan import plan_unit
    from harness.registry import MODELS, TASKS

    task = TASKS.get("quickstart")
    unit, _ = plan_unit(task, MODELS.get("all-minilm-l6-v2"))
    params = unit.settings()["attack_params"]
    assert set(task.attack.params) < set(params)  # the task states four; the row gets every one
    assert params["rungs"] == 3 and params["lr_range"] == [0.003, 0.03] and params["init"] == "auto"
    assert {k: params[k] for k in task.attack.params} == task.attack.params
    stated = task.model_copy(update={"attack": task.attack.model_copy(update={"params": {**task.attack.params, "rungs": 3}})})
    assert plan_unit(stated, MODELS.get("all-minilm-l6-v2"))[0].unit_id != unit.unit_id  # stated values are hashed


def test_kkt_auto_init_is_decided_when_the_unit_is_planned(tmp_path):
    """`init: auto` becomes mixed in a pixel unit with non-members, stated in the unit (its id, its shards, its merge
    and a resumed run all see it), and the same as stating it; where auto means rows the task is left as it was,
    so those units keep their ids."""
    from harness.pipeline.plan import plan_unit
    from harness.registry import MODELS, TASKS
    from harness.specs.task import TaskSpec

    card, kkt = MODELS.get("identity"), {"name": "kkt", "params": {"m": 4, "restarts": 2}}
    auto, _ = plan_unit(TaskSpec(**{**TASK, "attack": kkt}), card)
    assert auto.task.attack.params == {"m": 4, "restarts": 2, "init": "mixed"}
    stated = {**kkt, "params": {**kkt["params"], "init": "mixed"}}
    assert plan_unit(TaskSpec(**{**TASK, "attack": stated}), card)[0].unit_id == auto.unit_id
    rows = {**kkt, "params": {**kkt["params"], "init": "rows"}}
    assert plan_unit(TaskSpec(**{**TASK, "attack": rows}), card)[0].task.attack.params["init"] == "rows"
    alone, _ = plan_unit(TaskSpec(**{**TASK, "nonmembers": 1, "attack": kkt}), card)  # too few public inputs to split
    assert alone.task.attack.params == kkt["params"]
    sklearn = TaskSpec(**{**TASK, "attack": kkt, "victim": {"transform": "standardize", "trainer": "sklearn-mlp"}})
    assert plan_unit(sklearn, card)[0].task == sklearn  # a head that does not leak keeps rows (its membership signal)
    from harness.heads.io import save_head
    from harness.heads.mlp import MLPHead

    head = save_head(MLPHead([3072, 8, 1]), tmp_path / "head.safetensors", {})
    given, _ = plan_unit(TaskSpec(**{**TASK, "attack": kkt}), card, head_file=str(head))
    assert given.task.attack.params == kkt["params"] and given.task.victim.trainer == "given"  # trained how: unknown
    assert given.task.null_victim is None  # none is trained beside a given head, and its settings say so
    text = TASKS.get("quickstart")
    assert plan_unit(text, MODELS.get("all-minilm-l6-v2"))[0].task == text
    path = write_sweep(tmp_path, tasks=[{**TASK, "attack": kkt}], grid={})
    (pu,) = plan_sweep(load_sweep(path), path).units()
    assert pu.unit.task.attack.params["init"] == "mixed" and pu.unit_id == auto.unit_id


def test_modality_pairs_and_inline_relative_paths(tmp_path):
    task = {**TASK, "data": {**TASK["data"], "source": "data.parquet"}}
    (tmp_path / "data.parquet").write_bytes(CIFAR.read_bytes())
    path = write_sweep(tmp_path, models=["identity", "all-minilm-l6-v2", "dinov2-small"], tasks=[task, "quickstart"])
    plan = plan_sweep(load_sweep(path), path)
    pairs = {(pu.unit.card.name, pu.unit.task.name) for pu in plan.units()}
    assert pairs == {("identity", "tiny-cifar"), ("dinov2-small", "tiny-cifar"), ("all-minilm-l6-v2", "quickstart")}
    assert plan.n_units == 6 and plan.tasks[0][1] == str(tmp_path)


def test_grid_varies_the_victim_recipe(tmp_path):
    """Dotted keys into `victim` (transform, trainer, params.*) and whole recipes as values; each recipe its own unit."""
    crossed = write_sweep(tmp_path, grid={"victim.transform": ["none", "standardize"], "victim.trainer": ["paper", "linear"]})
    units = list(plan_sweep(load_sweep(crossed), crossed).units())
    assert sorted(u.unit.task.victim.label for u in units) == ["none+linear", "none+paper", "standardize+linear", "standardize+paper"]
    assert len({u.unit_id for u in units}) == 4
    listed = write_sweep(tmp_path, name="l", grid={"seed": [0, 1], "victim": [{"transform": "none", "trainer": "paper"},
                                                                          {"transform": "standardize", "trainer": "sklearn-mlp"}]})
    units = list(plan_sweep(load_sweep(listed), listed).units())
    assert [(u.unit.task.seed, u.unit.task.victim.label) for u in units] == [
        (0, "none+paper"), (0, "standardize+sklearn-mlp"), (1, "none+paper"), (1, "standardize+sklearn-mlp")]
    params = write_sweep(tmp_path, name="p", grid={"victim.trainer": ["linear"], "victim.params.C": [0.1, 10.0]})
    assert [u.unit.task.victim.params for u in plan_sweep(load_sweep(params), params).units()] == [{"C": 0.1}, {"C": 10.0}]


def test_bad_victim_grids_fail_with_one_line(tmp_path, capsys, monkeypatch):
    assert "did you mean 'transform'" in _bad(capsys, write_sweep(tmp_path, grid={"victim.transfrom": ["none"]}))
    assert "victim.params.epsilon" in _bad(capsys, write_sweep(tmp_path, grid={"victim.params": [{"C": 1}]}))
    line = _bad(capsys, write_sweep(tmp_path, grid={"victim.trainer": ["paper", "sklearn"]}))
    assert "victim.trainer = 'sklearn'" in line and "did you mean 'sklearn-mlp'" in line and "grid victim.trainer=sklearn" in line
    line = _bad(capsys, write_sweep(tmp_path, grid={"victim.trainer": ["linear"], "victim.params.CC": [1.0]}))
    assert "victim.params.CC" in line and "did you mean 'C'" in line
    # dp-sgd without opacus: one line naming the install, at plan time (before any cluster starts)
    monkeypatch.setitem(__import__("sys").modules, "opacus", None)
    line = _bad(capsys, write_sweep(tmp_path, grid={"victim.trainer": ["paper", "dp-sgd"]}))
    assert "victim.trainer = 'dp-sgd'" in line and "pip install 'recon-harness[dp]'" in line


def test_shard_merge_renumbers_runs():
    def res(n_runs, m, start):
        runs = [RunRecord(i, {"lr": 0.1}, "ok", 5, 0.5, 0.1) for i in range(n_runs)]
        return AttackResult(torch.full((m * n_runs, 3), float(start)), torch.zeros(m * n_runs, dtype=torch.long),
                            torch.ones(m * n_runs), torch.arange(n_runs).repeat_interleave(m), runs, {}, 1.0)

    out = merge([res(2, 2, 0), res(1, 2, 1), res(0, 2, 2)], {"restarts": 3})
    assert out.candidates.shape == (6, 3) and out.run_ids.tolist() == [0, 0, 1, 1, 2, 2]
    assert [r.run_id for r in out.runs] == [0, 1, 2] and out.wall_s == 3.0
    assert [j.restarts for j in shard_jobs(10, 4, 7)] == [4, 4, 2]


class FakeHub:
    def __init__(self, models):
        self.models, self.calls = models, []

    def list_models(self, **kw):
        self.calls.append(kw)
        return iter(self.models[: kw["limit"]])


def test_hub_query_pins_revisions_and_picks_up_only_new_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(hubmod, "hub_offline", lambda: False)
    found = [SimpleNamespace(id="org/vit-a", sha="a" * 40, tags=["license:mit"]), SimpleNamespace(id="org/vit-b", sha="b" * 40, tags=[])]
    fake = FakeHub(found)
    monkeypatch.setattr(hubmod, "hf_api", lambda: fake)
    q = {"pipeline_tag": "image-feature-extraction", "library": "transformers", "top_k": 2, "card": {"modality": "image"}}
    path = write_sweep(tmp_path, models=[], hub=[q], grid={})
    plan = plan_sweep(load_sweep(path), path)
    units = list(plan.units())
    assert [(u.unit.card.id, u.unit.revision) for u in units] == [("org/vit-a", "a" * 40), ("org/vit-b", "b" * 40)]
    assert units[0].unit.card.licence == "mit" and units[0].unit.card.pinned
    call = fake.calls[0]
    assert call["filter"] == ["transformers"] and call["sort"] == "downloads" and call["limit"] == 2
    assert call["pipeline_tag"] == "image-feature-extraction"
    fake.models = [SimpleNamespace(id="org/vit-a", sha="c" * 40, tags=[]), found[1]]  # a new revision of one model
    again = [u.unit_id for u in plan_sweep(load_sweep(path), path).units()]
    assert again[1] == units[1].unit_id and again[0] != units[0].unit_id
    fake.models = []
    with pytest.raises(HarnessError, match="returned no models"):
        plan_sweep(load_sweep(path), path)


def _bad(capsys, *argv) -> str:
    code = main(["sweep", *map(str, argv)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("recon-harness: error:")
    return err[0]


def test_bad_sweeps_fail_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a case that were accepted would write its default results/<name> here
    assert "did you mean 'identity'" in _bad(capsys, write_sweep(tmp_path, models=["identiy"]))
    assert "did you mean 'quickstart'" in _bad(capsys, write_sweep(tmp_path, tasks=["quickstrt"]))
    assert "empty list" in _bad(capsys, write_sweep(tmp_path, grid={"seed": []}))
    assert "did you mean 'per_class'" in _bad(capsys, write_sweep(tmp_path, grid={"per_clas": [1]}))
    assert "did you mean 'weight_decay'" in _bad(capsys, write_sweep(tmp_path, grid={"head.weight_decy": [0.1]}))
    line = _bad(capsys, write_sweep(tmp_path, grid={"head.weight_decay": [-1]}))
    assert "head.weight_decay" in line and "grid head.weight_decay=-1" in line
    assert "kkt-reference.mm" in _bad(capsys, write_sweep(tmp_path, grid={"attack.params.mm": [3]}))
    # a weight per layer of the head the sweep trains (one hidden layer: 2), checked at plan time, not as a failure row
    kkt = {**TASK, "attack": {"name": "kkt", "params": {"restarts": 2}}}
    line = _bad(capsys, write_sweep(tmp_path, tasks=[kkt], grid={"attack.params.layer_weights": [[1, 1], [1, 0, 1]]}))
    assert "attack.params.layer_weights = [1, 0, 1]: give one weight per layer of the head (2)" in line
    assert "grid attack.params.layer_weights=[1, 0, 1]" in line
    assert "at least one model" in _bad(capsys, write_sweep(tmp_path, models=[]))
    assert "no units" in _bad(capsys, write_sweep(tmp_path, models=["all-minilm-l6-v2"]))
    q = {"library": "transformers", "card": {"modality": "image"}}
    assert "HF_HUB_OFFLINE" in _bad(capsys, write_sweep(tmp_path, models=[], hub=[q]))
    assert "no such file" in _bad(capsys, tmp_path / "missing.yaml")
    # two tasks of one name shared their units (an image task was paired with a text card, the image card's units lost)
    line = _bad(capsys, write_sweep(tmp_path, tasks=[TASK, {**TASK, "per_class": 3}]))
    assert "tasks = 'tiny-cifar': two tasks of this name" in line
    assert "finite number" in _bad(capsys, write_sweep(tmp_path, resources={"shard": {"memory_gb": float("inf")}}))
    assert "out = ''" in _bad(capsys, write_sweep(tmp_path, out=""))
    # data that is not there: refused before planning (every unit failed at its first stage, exit 1)
    line = _bad(capsys, write_sweep(tmp_path, tasks=[{**TASK, "data": {**TASK["data"], "source": "nowhere.parquet"}}]))
    assert "data.source = 'nowhere.parquet': no such file or directory (task tiny-cifar" in line


def test_store_of_another_schema_version_and_a_silent_address(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "_recon_harness.json").write_text('{"schema_version": 0}')
    assert "schema version 0" in _bad(capsys, write_sweep(tmp_path), "--out", out)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: nothing answers
        line = _bad(capsys, write_sweep(tmp_path), "--out", tmp_path / "o", "--address", f"127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in line and "no Ray cluster answers" in line
    for address in ("127.0.0.1:99999", "127.0.0.1:abc"):  # an internal error (urllib's ValueError) before
        assert "a port from 1 to 65535" in _bad(capsys, write_sweep(tmp_path), "--out", tmp_path / "o", "--address", address)


def test_dry_run_prints_the_plan(tmp_path, capsys):
    assert main(["sweep", write_sweep(tmp_path), "--dry-run", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "units 2 (0 done, 2 to run" in out and "shards to run 8" in out
    assert not (tmp_path / "o").exists()


def test_example_sweeps_validate():
    for f in sorted((ROOT / "tasks" / "sweeps").glob("*.yaml")):
        spec = load_sweep(f).model_copy(update={"hub": []})  # Hub queries need the network
        plan = plan_sweep(spec, f)
        assert plan.n_units >= 2 and all(rev for _, rev, _ in plan.cards)


def test_a_gpu_cluster_whose_shards_ask_no_gpu_is_told_once():
    """Ray hides the GPUs from a task that asks none: with the default (CPU-only) requests a GPU cluster's sweep runs
    on CPUs. The sweep says so in one line; not on a CPU cluster, nor when the shards ask for GPUs."""
    from harness.runner.cluster import unused_gpus_notice
    from harness.sweep.spec import Resources

    default = {k: getattr(Resources(), k).ray_options() for k in ("embed", "train", "shard", "finish")}
    line = unused_gpus_notice(default, {"CPU": 16.0, "GPU": 2.0})
    assert line and "2 GPU(s)" in line and "resources.shard.num_gpus is 0" in line and "\n" not in line
    assert unused_gpus_notice(default, {"CPU": 16.0}) is None
    asks = {**default, "shard": {"num_cpus": 1, "num_gpus": 0.25}}
    assert unused_gpus_notice(asks, {"CPU": 16.0, "GPU": 2.0}) is None


def test_a_dry_run_does_not_ask_to_write_where_it_writes_nothing(tmp_path, capsys, monkeypatch):
    """A read-only results directory (someone else's, a mounted archive) can be planned against."""
    from harness.store.store import ResultStore

    def read_only(*a, **k):
        raise HarnessError("--out", str(tmp_path / "o"), "cannot write under it")

    monkeypatch.setattr(ResultStore, "check", staticmethod(read_only))
    assert main(["sweep", write_sweep(tmp_path), "--dry-run", "--out", str(tmp_path / "o")]) == 0
    assert main(["sweep", write_sweep(tmp_path), "--out", str(tmp_path / "o")]) == 2


def test_a_sweep_cache_that_is_a_file_or_cannot_be_made_is_refused_before_any_unit(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    for cache, said in ((tmp_path / "f", "existing file"), (tmp_path / "f" / "sub", "is a file")):
        assert main(["sweep", write_sweep(tmp_path), "--out", str(tmp_path / "o"), "--cache", str(cache)]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("recon-harness: error: --cache") and said in line, line
    assert not (tmp_path / "o").exists()
