"""The Ray runner on a real loopback cluster, when work fails or stops: a worker killed mid-shard, failures then
resume, --force, a second writer, SIGTERM, a resume cut into other shards, a resumed unit equal to a straight run."""

from __future__ import annotations

import functools
import json
import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only; Ray reads it at import
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.errors import HarnessError
from harness.runner import work
from harness.runner.lock import StoreLock
from harness.store import ResultStore
from tests.runner_helpers import cluster, drive, make_plan, shard_keys  # noqa: F401 - cluster: the module's Ray cluster (autouse)
from tests.test_sweep import write_sweep


def _exit_once(markers: str, unit, prep, trained, kind, job):
    """A shard stage whose worker process dies on its first attempt (a crash mid-shard)."""
    marker = Path(markers) / f"{unit.unit_id}-{kind}-{job.index}"
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return work.shard(unit, prep, trained, kind, job)


def test_worker_killed_mid_shard_still_completes_without_duplicates(tmp_path):
    plan, _ = make_plan(tmp_path, grid={})
    (tmp_path / "m").mkdir()
    stages = work.Stages(work.prepare, work.train, functools.partial(_exit_once, str(tmp_path / "m")), work.finish)
    counts = drive(plan, tmp_path / "out", stages).run()
    assert counts.units_done == 1 and counts.units_failed == 0 and counts.shards_run == 4
    assert len(list((tmp_path / "m").iterdir())) == 4  # every shard's first worker died
    store = ResultStore(tmp_path / "out", create=False)
    assert len(shard_keys(store)) == 4 == len(set(shard_keys(store)))
    assert store.read("attack_runs").num_rows == 6 and store.read("victims").num_rows == 2


def _train_fails_for_seed_1(unit, prep, kinds):
    if unit.task.seed == 1:
        raise FloatingPointError("victim training diverged (loss nan)")
    return work.train(unit, prep, kinds)


def _shard_counting(markers: str, unit, prep, trained, kind, job):
    (Path(markers) / f"{unit.unit_id}-{kind}-{job.index}").touch()
    return work.shard(unit, prep, trained, kind, job)


def test_failures_table_then_resume_recomputes_only_what_is_missing(tmp_path):
    plan, _ = make_plan(tmp_path)
    out = tmp_path / "out"
    bad = work.Stages(work.prepare, _train_fails_for_seed_1, work.shard, work.finish)
    c = drive(plan, out, bad).run()
    assert (c.units_done, c.units_failed) == (1, 1)
    assert c.shards_total == c.shards_run == 4  # the failed unit's shards left the progress bar's total
    store = ResultStore(out, create=False)
    (f,) = store.read("failures").to_pylist()
    assert f["stage"] == "train" and f["error_type"] == "FloatingPointError" and "diverged" in f["message"]
    assert f["seed"] == 1 and "_train_fails_for_seed_1" in f["traceback"]
    # a driver that died after some shards: drop the finished unit's marker and one shard of it
    done_uid = store.read("victims").column("unit_id")[0].as_py()
    (out / "victims" / f"{done_uid}.parquet").unlink()
    (out / "shards" / f"{done_uid}-null-s0001.parquet").unlink()
    (tmp_path / "m").mkdir()
    counting = work.Stages(work.prepare, work.train, functools.partial(_shard_counting, str(tmp_path / "m")), work.finish)
    driver, totals = drive(plan, out, counting), []
    driver.opts.on_event = lambda event, info: totals.append(driver.counts.shards_total)
    c = driver.run()
    assert (c.units_done, c.units_failed, c.shards_reused) == (2, 0, 3)
    assert totals and set(totals) == {5} == {c.shards_run}  # the bar's total known from the start, never grown
    ran = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert len(ran) == 5 and f"{done_uid}-null-1" in ran  # 1 missing shard + 4 of the unit that failed
    assert store.read("failures").num_rows == 0  # cleared once the unit succeeded
    assert len(shard_keys(store)) == 8 == len(set(shard_keys(store)))
    assert store.read("victims").num_rows == 4


def test_force_recomputes(tmp_path):
    plan, _ = make_plan(tmp_path, grid={})
    drive(plan, tmp_path / "out").run()
    c = drive(plan, tmp_path / "out", force=True).run()
    assert c.units_done == 1 and c.units_skipped == 0 and c.shards_run == 4


def test_a_force_cut_short_leaves_the_unit_to_do_not_done(tmp_path):
    """--force starts a unit over: until its new rows are written it is not done, and its old shards are not reused
    (a --force interrupted after the new heads were saved left the old rows, and a resume took the unit as done)."""
    plan, _ = make_plan(tmp_path, grid={})
    out = tmp_path / "out"
    drive(plan, out).run()
    uid = next(plan.units()).unit_id
    bad = work.Stages(work.prepare, work.train, _shard_fails_for_null, work.finish)
    c = drive(plan, out, bad, force=True).run()  # cut short: every null shard fails after the heads are saved
    assert c.units_failed == 1
    assert not (out / "victims" / f"{uid}.parquet").exists() and not list((out / "shards").glob(f"{uid}-null-*"))
    c = drive(plan, out).run()  # a plain rerun computes it again
    assert (c.units_done, c.units_skipped) == (1, 0)


def _hold_lock(out: Path):
    """Another process writing to `out` (a sweep elsewhere): it holds the store's lock until killed."""
    import subprocess
    import sys

    code = f"import time\nfrom harness.runner.lock import StoreLock\nwith StoreLock({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(300)"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_writer_on_the_same_store_is_refused(tmp_path, capsys):
    """While another process writes to a store, a sweep (driver or CLI) and a run there are refused in one line:
    the sweep before it starts a cluster, the run before it writes anything (a run beside a sweep removed shards the
    sweep was about to merge, and the sweep crashed)."""
    import yaml

    from tests.test_sweep import TASK

    plan, path = make_plan(tmp_path, grid={})
    out = tmp_path / "out"
    ResultStore(out)
    holder = _hold_lock(out)
    try:
        with pytest.raises(HarnessError, match="another recon-harness process is writing here"):
            drive(plan, out).run()
        capsys.readouterr()
        assert main(["sweep", path, "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "another recon-harness process is writing here (sweep (pid " in err[0], err
        assert err[0].startswith(f"recon-harness: error: --out = '{out}'"), err  # the flag the user typed, no raw JSON
        task = tmp_path / "tiny-cifar.yaml"
        task.write_text(yaml.safe_dump(TASK))
        assert main(["run", str(task), "--out", str(out), "--no-evidence", "--quiet"]) == 2
        assert "another recon-harness process is writing here" in capsys.readouterr().err
        assert not list(out.rglob("*.parquet"))
    finally:
        holder.kill()
        holder.wait()
    with StoreLock(out):  # re-entrant in one process: the CLI holds it around its driver
        assert drive(plan, out).run().units_done == 1


def test_a_run_that_completes_a_failed_unit_clears_its_failure(tmp_path):
    import yaml

    from tests.test_sweep import TASK

    plan, _ = make_plan(tmp_path, grid={})
    out = tmp_path / "out"
    bad = work.Stages(work.prepare, work.train, _shard_fails_for_null, work.finish)
    assert drive(plan, out, bad).run().units_failed == 1
    assert ResultStore(out, create=False).read("failures").num_rows >= 1
    task = tmp_path / "tiny-cifar.yaml"
    task.write_text(yaml.safe_dump(TASK))
    assert main(["run", str(task), "--out", str(out), "--no-evidence", "--quiet"]) == 0
    assert ResultStore(out, create=False).read("failures").num_rows == 0  # the unit is done: no failure stands


def _shard_fails_for_null(unit, prep, trained, kind, job):
    """A sweep that dies once the victims are trained: every null shard fails (the heads are on disk)."""
    if kind == "null":
        raise RuntimeError("worker lost")
    return work.shard(unit, prep, trained, kind, job)


VOLATILE = {"created_at", "versions", "wall_s", "train_s", "attack_s", "score_s", "embed_s", "select_s", "compute_s",
            "embed_cache_hit", "node"}


def _rows(store, table):
    rows = store.read(table).to_pylist()
    key = {"victims": ("victim",), "attack_runs": ("victim", "run_id"), "candidates": ("victim", "candidate"),
           "matches": ("victim", "kind", "index")}[table]
    return sorted(({k: v for k, v in r.items() if k not in VOLATILE} for r in rows), key=lambda r: [r[k] for k in key])


@pytest.mark.parametrize("classes", [2, 3])
def test_resumed_unit_equals_the_straight_run_null_victim_included(tmp_path, classes):
    """The null victim's frame (its own mean, the standardising scale) travels with its saved head, so a
    unit resumed after its victims were trained gives the rows of the same unit run straight through; on a
    cross-entropy head of three classes too (the rivals' split, sharded)."""
    base = __import__("tests.test_sweep", fromlist=["TASK"]).TASK
    task = {**base, "victim": {"transform": "standardize"},
            "attack": {"name": "kkt", "params": {"m": 4, "restarts": 4, "iterations": 40, "rungs": 0}}}
    if classes == 3:
        task.update(classes=["airplane", "automobile", "cat"], head={**base["head"], "loss": "ce"})
    plan, _ = make_plan(tmp_path, tasks=[task], grid={})
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert drive(plan, straight).run().units_done == 1
    broken = work.Stages(work.prepare, work.train, _shard_fails_for_null, work.finish)
    assert drive(plan, resumed, broken).run().units_failed == 1
    from harness.runner.resume import load_trained

    uid = next(plan.units()).unit_id
    loaded, _ = load_trained(resumed, uid, ("real", "null"))
    null = loaded.victims["null"]
    assert null.frame.scale is not None and null.frame.transform == "standardize"
    assert not torch.equal(null.frame.mean, loaded.victims["real"].frame.mean)  # its own draw's mean
    counting = work.Stages(work.prepare, _no_train, work.shard, work.finish)  # resume must not retrain
    assert drive(plan, resumed, counting).run().units_done == 1
    a, b = ResultStore(straight, create=False), ResultStore(resumed, create=False)
    for table in ("victims", "attack_runs", "candidates", "matches"):
        assert _rows(a, table) == _rows(b, table), table
    assert {r["num_classes"] for r in b.read("victims").to_pylist()} == {classes}


def _no_train(unit, prep, kinds):
    raise AssertionError("a resumed unit reuses its trained victims")


def test_a_resume_cut_into_other_shards_recomputes_them_and_drops_the_strays(tmp_path):
    """restarts_per_shard changed between a run and its resume: a stored shard of another size is computed again, not
    merged as it is (the unit got more restarts than its settings say), and shards no job names leave the store."""
    out = tmp_path / "out"
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    ones, _ = make_plan(tmp_path / "a", grid={}, restarts_per_shard=1)  # 3 shards of 1 restart per victim
    drive(ones, out).run()
    uid = next(ones.units()).unit_id
    (out / "victims" / f"{uid}.parquet").unlink()  # as if the driver had died before the merge
    twos, _ = make_plan(tmp_path / "b", grid={}, restarts_per_shard=2)  # shards of 2 + 1 restarts
    assert next(twos.units()).unit_id == uid
    c = drive(twos, out).run()
    assert (c.shards_run, c.shards_reused) == (2, 2)  # s0000 (1 stored, 2 asked) again; s0001 is the same work: kept
    store = ResultStore(out, create=False)
    assert all(v["n_runs"] == 3 for v in store.read("victims").to_pylist())  # the task's 3 restarts, not 1 + 1 + 1 + 2
    from harness.sweep.shards import shard_seed

    seed = json.loads(store.read("victims").to_pylist()[0]["settings"])["attack_params"]["seed"]
    layout = [{"restarts": 2, "seed": shard_seed(seed, 0)}, {"restarts": 1, "seed": shard_seed(seed, 1)}]
    assert all(v["attack_shards"] == layout for v in store.read("victims").to_pylist())  # the rows say how it was cut
    assert sorted(p.name.removeprefix(uid + "-") for p in (out / "shards").iterdir()) == [
        "null-s0000.parquet", "null-s0001.parquet", "real-s0000.parquet", "real-s0001.parquet"]  # s0002: gone


def test_a_resume_that_finds_a_unit_done_retires_what_it_supersedes(tmp_path):
    """A sweep cut off between a unit's victims file (done) and retiring the units it supersedes: the resume skips the
    unit and retires them then, so the same work does not stand twice in the store."""
    import pyarrow as pa

    plan, path = make_plan(tmp_path, grid={})
    out = tmp_path / "out"
    drive(plan, out).run()
    uid = next(plan.units()).unit_id
    old = uid.rsplit("-", 1)[0] + "-000000000000"  # the same work under an id an older release gave it
    store = ResultStore(out)
    for table in ("victims", "attack_runs"):
        rows = store.read(table, prefix=uid).to_pylist()
        store.write(table, old, pa.Table.from_pylist([{**r, "unit_id": old} for r in rows], schema=store.read(table).schema))
    assert main(["sweep", path, "--out", str(out)]) == 0  # every unit done: retired before "nothing to run"
    assert set(store.read("victims").column("unit_id").to_pylist()) == {uid}
    assert set(store.read("attack_runs").column("unit_id").to_pylist()) == {uid}


def test_an_upgraded_sweep_renames_the_units_an_older_release_named_otherwise(tmp_path, capsys):
    """The same work done under the id an older release gave it (ids changed: local data named by its content) is
    not recomputed, nor retired with what only it holds: the dry run counts it done, the sweep renames it."""
    from harness.store.adopt import adopt

    plan, path = make_plan(tmp_path, grid={})
    out = tmp_path / "out"
    drive(plan, out).run()
    uid = next(plan.units()).unit_id
    old = uid.rsplit("-", 1)[0] + "-000000000000"
    adopt(ResultStore(out), uid, old)  # as an older release left it
    from harness.report import build_report

    assert old in build_report(out).read_text(encoding="utf-8")  # a page written then
    before = ResultStore(out, create=False).read("candidates").drop_columns(["unit_id"])
    assert main(["sweep", path, "--out", str(out), "--dry-run"]) == 0
    assert "1 done, 1 of them under an older release's ids" in " ".join(capsys.readouterr().out.split())
    assert main(["sweep", path, "--out", str(out)]) == 0
    err = capsys.readouterr()
    assert f"{old} -> {uid}" in err.err and "already done" in err.out
    store = ResultStore(out, create=False)
    assert set(store.read("victims").column("unit_id").to_pylist()) == {uid}
    assert store.read("candidates").drop_columns(["unit_id"]).equals(before)  # the rows it held, not recomputed
    assert all(v["head_path"].startswith(f"heads/{uid}-") for v in store.read("victims").to_pylist())
    page = (out / "report.html").read_text(encoding="utf-8")  # rebuilt: it named the old id
    assert uid in page and old not in page and "report rebuilt" in err.err


def test_run_into_a_sweeps_store_drops_that_units_shards(tmp_path):
    """`run` computes a unit without shards: once its rows replace the sweep's, the sweep's shards of that unit (which
    the leaderboard's hours read) are not left describing other work."""
    import yaml

    from tests.test_sweep import TASK

    plan, _ = make_plan(tmp_path, grid={})
    out = tmp_path / "out"
    drive(plan, out).run()
    uid = next(plan.units()).unit_id
    assert list((out / "shards").glob(f"{uid}-*"))
    task = tmp_path / "tiny-cifar.yaml"
    task.write_text(yaml.safe_dump(TASK))
    assert main(["run", str(task), "--out", str(out), "--no-evidence", "--quiet"]) == 0
    assert not list((out / "shards").glob(f"{uid}-*"))
    assert not list((out / "heads").glob(f"{uid}-*.json"))  # the sweep's training records described its heads
    victims = ResultStore(out, create=False).read("victims").to_pylist()
    assert len(victims) == 2  # real and null, replaced once
    seed = json.loads(victims[0]["settings"])["attack_params"]["seed"]
    assert all(v["attack_shards"] == [{"restarts": v["n_runs"], "seed": seed}] for v in victims)  # one attack


def test_sigterm_stops_a_sweep_as_ctrl_c_does(tmp_path):
    """cron's and `ray job stop`'s SIGTERM: 'interrupted', exit 130 (resumable), not Ray's core-dump line and exit 1
    (which reads as 'units failed')."""
    import signal
    import subprocess
    import sys
    import time

    path = write_sweep(tmp_path, grid={"seed": [0, 1, 2]}, restarts_per_shard=1)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own local cluster, not this module's
    p = subprocess.Popen([sys.executable, "-m", "harness", "sweep", path, "--out", str(out), "--quiet"],
                         cwd=Path(__file__).parent.parent, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not list(out.glob("shards/*.parquet")) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.2)
    assert p.poll() is None, p.communicate()[1][-2000:]  # still sweeping when the first shard is written
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "recon-harness: interrupted", err[-2000:]


def test_dry_run_counts_the_shards_a_resume_reuses(tmp_path, capsys):
    plan, path = make_plan(tmp_path, grid={})
    out = tmp_path / "out"
    bad = work.Stages(work.prepare, work.train, _shard_fails_for_null, work.finish)
    assert drive(plan, out, bad).run().units_failed == 1  # the real victim's 2 shards stored, the null's failed
    capsys.readouterr()
    assert main(["sweep", path, "--out", str(out), "--dry-run"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    c = drive(plan, out).run()
    assert (c.shards_run, c.shards_reused) == (2, 2)
    assert f"shards to run {c.shards_run} ({c.shards_reused} stored reused)" in said, said  # it said 4
