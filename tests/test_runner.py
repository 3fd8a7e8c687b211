"""The Ray runner on a real loopback cluster (one per module): end to end, mixed cards, resources, the rows and
the summary it writes, data changed in place. Faults, failures and resume: test_resume.py."""

from __future__ import annotations

import json
import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only; Ray reads it at import

from harness.cli import main
from harness.store import ResultStore
from tests.runner_helpers import cluster, drive, make_plan, shard_keys  # noqa: F401 - cluster: the module's Ray cluster (autouse)
from tests.test_sweep import write_sweep


def test_sweep_end_to_end_then_idempotent_rerun(tmp_path, capsys, monkeypatch):
    from harness.store.supersede import StoredWork

    reads = []
    monkeypatch.setattr(StoredWork, "__init__", lambda self, *a, _init=StoredWork.__init__, **k: (reads.append(1), _init(self, *a, **k))[1])
    path = write_sweep(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", path, "--out", str(out), "--quiet"]) == 0
    assert len(reads) == 1  # the store is read once for what each finished unit supersedes, not once per unit
    store = ResultStore(out, create=False)
    victims = store.read("victims").to_pylist()
    assert len(victims) == 4 and {v["victim"] for v in victims} == {"real", "null"}
    assert {v["seed"] for v in victims} == {0, 1} and all(v["n_runs"] == 3 for v in victims)
    assert all(v["n_candidates"] == 12 and '"ray"' in v["versions"] and v["revision"] == "none" for v in victims)
    # selection without ground truth runs after each unit's shards are merged: k = 10, 20, 50 per victim
    scores = store.read("selection_scores").to_pylist()
    assert len(scores) == 4 * 3 * 2 and {r["victim"] for r in scores} == {"real", "null"}  # x (clustering, baseline)
    assert store.read("selections").num_rows >= 4
    from harness.leaderboard import build

    board = build(out)  # the leaderboard reads the selections' top-20 precision back
    assert board and all(r["selection_p20"] is not None and r["baseline_p20"] is not None for r in board)
    runs = store.read("attack_runs").to_pylist()
    assert sorted((r["unit_id"], r["victim"], r["run_id"]) for r in runs) == sorted(
        {(r["unit_id"], r["victim"], r["run_id"]) for r in runs}) and len(runs) == 12
    assert len(shard_keys(store)) == 8 == len(set(shard_keys(store)))
    assert store.read("matches").num_rows == 4 * (4 + 6)
    mtimes = {f: f.stat().st_mtime_ns for f in out.rglob("*.parquet")}
    capsys.readouterr()
    assert main(["sweep", path, "--out", str(out), "--quiet"]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in out.rglob("*.parquet")} == mtimes  # nothing rewritten


def test_a_sweep_mixes_backbone_and_classifier_cards(tmp_path, hub_repo, tiny_distilbert_dir):
    """One task, two cards: the backbone gets a trained victim and its null, the fine-tuned checkpoint its own
    head only; the leaderboard shows each card's kind and revision."""
    from harness.leaderboard import build
    from tests.test_classifiers import fine_tuned

    ckpt, card = fine_tuned(tmp_path, hub_repo, tiny_distilbert_dir, "tiny-org/distilbert-tiny", "text")
    task = {"name": "mix", "model": str(tmp_path / "distilbert-tiny.yaml"), "classes": ["negative", "positive"],
            "data": {"source": str(ckpt / "data"), "split": "train", "nonmember_split": "test",
                     "input_column": "sentence", "label_column": "label"},
            "per_class": 12, "nonmembers": 24, "null_victim": "shuffled",
            "head": {"widths": [16], "optimizer": "adam", "lr": 0.01, "max_steps": 100},
            "attack": {"name": "kkt", "params": {"m": 8, "restarts": 2, "iterations": 20}}}
    path = write_sweep(tmp_path, name="mix", models=[str(tmp_path / "distilbert-tiny.yaml"), str(card)], tasks=[task],
                       grid={})
    out = tmp_path / "out"
    assert main(["sweep", path, "--out", str(out), "--quiet"]) == 0
    victims = ResultStore(out, create=False).read("victims").to_pylist()
    assert sorted((v["model_kind"], v["victim"]) for v in victims) == [("backbone", "null"), ("backbone", "real"),
                                                                         ("classifier", "real")]
    board = {r["kind"]: r for r in build(out)}
    assert board["classifier"]["recipe"] == "checkpoint" and board["backbone"]["recipe"] == "none+paper"
    assert board["classifier"]["revision"] != board["backbone"]["revision"]


def test_unsatisfiable_resources_fail_before_running(tmp_path, capsys):
    path = write_sweep(tmp_path, resources={"shard": {"num_cpus": 1, "num_gpus": 1}})
    code = main(["sweep", path, "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "resources.shard.num_gpus = 1.0" in err[0] and "largest: 0 GPU" in err[0]
    assert not list((tmp_path / "out").rglob("*.parquet")) if (tmp_path / "out").exists() else True


def test_sweep_rows_record_the_device_their_attack_ran_on(tmp_path):
    """The rows are written by the finish task (1 CPU here); the attack ran in shards holding 2: the rows say 2
    (they said the finish task's 'cpu x1'), and the heads trained in a train task holding 1 (its thread count
    changes the head's rounding: it was nowhere on the row)."""
    plan, _ = make_plan(tmp_path, grid={}, resources={"shard": {"num_cpus": 2}, "finish": {"num_cpus": 1},
                                                       "train": {"num_cpus": 1}})
    drive(plan, tmp_path / "out").run()
    victims = ResultStore(tmp_path / "out", create=False).read("victims").to_pylist()
    assert len(victims) == 2 and {v["device"] for v in victims} == {"cpu x2"}
    assert {v["train_device"] for v in victims} == {"cpu x1"}


def test_the_sweep_summary_is_one_line_in_a_log(tmp_path, capsys):
    """Not a terminal (cron, ray job logs): the summary stays one line, however long its path (it wrapped at 160)."""
    _, path = make_plan(tmp_path, grid={})
    out = tmp_path / ("results-" + "x" * 150)
    assert main(["sweep", path, "--out", str(out), "--quiet"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    (summary,) = [ln for ln in lines if ln.startswith("sweep s on ")]
    assert summary.endswith(f"-> {out}"), lines
    assert lines[-1] == f"the table: recon-harness leaderboard {out}; the page: recon-harness report {out}", lines


def test_a_sweep_over_data_changed_in_place_recomputes_and_supersedes_the_old_rows(tmp_path, capsys):
    import shutil

    import pyarrow.parquet as pq

    from tests.test_sweep import CIFAR, TASK

    data = tmp_path / "data.parquet"
    shutil.copy(CIFAR, data)
    path = write_sweep(tmp_path, tasks=[{**TASK, "data": {**TASK["data"], "source": str(data)}}], grid={})
    out = tmp_path / "out"
    assert main(["sweep", path, "--out", str(out), "--quiet"]) == 0
    (old,) = {r["unit_id"] for r in ResultStore(out, create=False).read("victims").to_pylist()}
    table = pq.read_table(CIFAR)
    pq.write_table(table.take(list(range(table.num_rows))[::-1]), data)  # other members are drawn now
    capsys.readouterr()
    assert main(["sweep", path, "--out", str(out), "--quiet"]) == 0
    assert "nothing to run" not in capsys.readouterr().out
    victims = ResultStore(out, create=False).read("victims").to_pylist()
    assert {r["unit_id"] for r in victims} != {old} and len(victims) == 2  # real and null of the new data alone
    assert all(json.loads(r["settings"])["data_digest"] for r in victims)
