"""Aggregate the results store into leaderboard rows: one per (model, revision, task, recipe, setting), seeds pooled,
controls beside, provenance kept."""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from pathlib import Path
from statistics import mean

import harness.runner.tables  # noqa: F401 - registers the shards table
from harness.errors import HarnessError, did_you_mean
from harness.leaderboard.columns import NAMES
from harness.provenance import cpu_threads
from harness.scoring.verdict import by_rule, scores_by_rule
from harness.specs.defaults import with_defaults
from harness.specs.fields import differing_fields, field_value, flat_fields
from harness.specs.task import TaskSpec
from harness.specs.work import task_work
from harness.store.store import ResultStore
from harness.victims.trainers import TRAINERS

NUMERIC_DESC = "members_at_fpr"
P_AT = 20  # the k of the selection precision columns
OLD_RECIPE = "none+paper"  # what every trained victim was before recipes existed (centred inputs, the paper trainer)
NO_RECIPE = "-"  # a given head (--head) in results written before recipes: how it was trained is unknown


def recipe_of(row: dict, settings: dict) -> str:
    """The row's recipe; rows written before the column existed get the one recipe of that time (or '-')."""
    if kind_of(settings) == "classifier":
        return "checkpoint"
    if row.get("recipe"):
        return row["recipe"]
    victim = settings["task"].get("victim")
    if victim:  # settings recorded the recipe although the row lacks the column
        return f"{victim.get('transform', 'none')}+{victim.get('trainer', 'paper')}"
    return NO_RECIPE if settings.get("head_file") or row.get("stopped_by") == "given" else OLD_RECIPE


def shown_model_id(row: dict) -> str:
    """The row's model id as the board shows it: a local directory (a fine-tuned checkpoint) as local:FOLDER, its path
    (user names, project folders) left out of tables that are shared; its revision names its content."""
    if str(row.get("revision") or "").startswith("local-"):  # resolve.local_revision: a local directory's files
        return f"local:{Path(row['model_id']).name}"
    return row["model_id"]


def kind_of(settings: dict) -> str:
    return (settings.get("card") or {}).get("kind") or "backbone"


def _head_label(settings: dict, head: dict, head_dims, trainer: str) -> str:
    """The head as trained: its hidden widths from the row (a trainer may not use the task's widths:
    sklearn-mlp has its own, linear none), else the task's; a classifier's head is the checkpoint's. The task's
    weight decay and schedule only for the trainers that use them (sklearn-mlp has its alpha, default-torch none)."""
    if kind_of(settings) == "classifier":
        return "head=checkpoint"
    widths = list(head_dims)[1:-1] if head_dims else head["widths"]
    label = f"head={'-'.join(map(str, widths)) or 'linear'}"
    if not getattr(TRAINERS.get(trainer), "uses_head_recipe", False):  # 'given', or a trainer with its own settings
        return label
    schedule = head["lr_schedule"]  # always present: _setting fills missing fields with the defaults
    return label + f" wd={head['weight_decay']:g}" + (f" lr_schedule={schedule}" if schedule != "constant" else "")


def _setting(settings: dict, head_dims=None, attack: str | None = None) -> tuple[str, str, dict]:
    """The setting's label, id and task: the task without seed, name, description and the recipe's transform and trainer
    (the recipe is a column of its own; the trainer's parameters stay in the setting). `attack`: the attack the row
    says ran, where it is not the task's (a linear head is scored by its weighted sum, not searched)."""
    # the unit's work (task_work), rows from before a field given its default; seeds and the name pooled
    task = task_work(with_defaults(json.loads(json.dumps(settings["task"])), TaskSpec))
    task.pop("seed", None)
    task.pop("name", None)
    if settings.get("data_digest"):  # local data: what it holds, not how a task file's path reached it
        task["data"]["source"] = f"sha256:{settings['data_digest']}"
    elif task["data"].get("format") != "hub":  # rows of a release before digests: what the file held then is unknown
        task["data"]["source"] = f"{Path(task['data']['source']).name} (content not recorded)"  # its folders stay off
    # selection's settings split a setting; whether evidence ran does not (a --no-evidence run's victims are the same)
    task["evidence"] = {k: v for k, v in (task.get("evidence") or {}).items() if k != "enabled"}
    params = dict(task["attack"].get("params") or {})
    params.pop("seed", None)
    task["attack"]["params"] = params
    victim = task.pop("victim", None) or {}
    trainer_params = victim.get("params") or {}
    if trainer_params:
        task["victim_params"] = trainer_params
    sid = hashlib.sha256(json.dumps(task, sort_keys=True).encode()).hexdigest()[:10]
    head = task["head"]
    ran = attack if attack and attack != task["attack"]["name"] else None
    label = (
        f"n={task['per_class']}x{len(task['classes'])} " + _head_label(settings, head, head_dims, victim.get("trainer", "paper"))
        + "".join(f" {k}={v}" for k, v in sorted(trainer_params.items()))
        + (f" {ran}" if ran else f" {task['attack']['name']}"
           + "".join(f" {k}={params[k]}" for k in ("m", "restarts", "iterations") if k in params))
    )
    return label, sid, task


# the fields the label above names by value (trainer parameters: victim_params.*); any other field in which the
# settings of one model and task differ is appended to their labels (_distinguish)
LABELLED = {"per_class", "head.widths", "head.weight_decay", "head.lr_schedule", "attack.name", "attack.params.m",
            "attack.params.restarts", "attack.params.iterations"}


def _labelled(path: str) -> bool:
    return path in LABELLED or path.startswith("victim_params.")


def _distinguish(groups: dict[tuple, dict], tasks: dict[str, dict]) -> None:
    """Settings of the same model and task whose labels would not say how they differ (a grid over head.lr or
    classes: the same members count, head and attack budget): each label gets every field those settings differ in
    that it does not already name, as FIELD=VALUE; where labels still collide (a trainer with its own head widths),
    the labelled fields they differ in too."""
    by_board: dict[tuple, set[str]] = defaultdict(set)
    for key in groups:
        by_board[key[:4]].add(key[5])
    for board, sids in by_board.items():
        if len(sids) < 2:
            continue
        flat = {sid: flat_fields(tasks[sid]) for sid in sids}
        differ = differing_fields(list(flat.values()))
        keys = [k for k in groups if k[:4] == board]
        for key in keys:
            f = flat[key[5]]
            groups[key]["label"] += "".join(f" {p}={field_value(f[p])}" for p in differ if not _labelled(p) and p in f)
        seen: dict[tuple, set[str]] = defaultdict(set)
        for key in keys:
            seen[(key[4], groups[key]["label"])].add(key[5])
        for key in keys:
            if len(seen[(key[4], groups[key]["label"])]) > 1:
                f = flat[key[5]]
                groups[key]["label"] += "".join(f" {p}={field_value(f[p])}" for p in differ if _labelled(p) and p in f)


def _replicate(row: dict, settings: dict) -> tuple:
    """What makes a unit one more replicate of its setting: its task seed and its attack's seed (the setting leaves
    both out, so two attack seeds of one task seed are two replicates, not one seed counted twice)."""
    params = ((settings.get("task") or {}).get("attack") or {}).get("params") or {}
    return row["seed"], json.dumps(params.get("seed"))


def _latest_per_replicate(rows: list[dict]) -> list[dict]:
    latest: dict[tuple, dict] = {}
    for r in rows:
        if r["replicate"] not in latest or r["created_at"] > latest[r["replicate"]]["created_at"]:
            latest[r["replicate"]] = r
    return list(latest.values())


def _avg(values):
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return mean(vals) if vals else None


def measured(row: dict) -> bool:
    """Whether the attack on this victim measured anything: an attack whose every run diverged leaves no candidate,
    no threshold and a null TPR (its counts null, or 0 in rows written before that): not 0 recovered."""
    tpr = row.get("tpr_at_fpr")
    return tpr is not None and not math.isnan(tpr) and row.get("n_candidates") != 0


def _attack_hours(store: ResultStore, victims: list[dict]) -> dict[str, list[float]]:
    """unit -> [GPU-hours, CPU-hours] of its attacks: a sweep's shards, each x what it held; a unit `run` wrote
    (no shards) from its victims' attack seconds x the device they record (`cpu xN`: N threads; a GPU name: one)."""
    hours: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in store.read("shards", columns=["unit_id", "compute_s", "num_cpus", "num_gpus"]).to_pylist():
        hours[s["unit_id"]][0] += (s["compute_s"] or 0) * (s["num_gpus"] or 0) / 3600
        hours[s["unit_id"]][1] += (s["compute_s"] or 0) * (s["num_cpus"] or 0) / 3600
    sharded = set(hours)
    for v in victims:
        if v["unit_id"] in sharded or not v.get("attack_s"):
            continue
        threads = cpu_threads(v.get("device"))
        hours[v["unit_id"]][0 if threads is None else 1] += v["attack_s"] * (threads or 1) / 3600
    return hours


def unlisted_failures(root: str | Path, rows: list[dict]) -> int:
    """Failed units that no row counts: their setting has no finished unit, so the board has no row to hold them.
    The finished units are the rows' own (`unit_ids`): the victims table is not read again."""
    store = ResultStore(root, create=False)
    done = {u for r in rows for u in r["unit_ids"].split(",") if u}
    failed = set(store.read("failures", columns=["unit_id"]).column("unit_id").to_pylist()) - done
    return len(failed) - sum(r["failed"] for r in rows)


def build(root: str | Path, sort: str = NUMERIC_DESC, ascending: bool = False) -> list[dict]:
    store = ResultStore(root, create=False)
    victims = store.read("victims").to_pylist()
    if not victims:
        failed = len(set(store.read("failures", columns=["unit_id"]).column("unit_id").to_pylist()))
        why = (f"holds no finished units: {failed} failed (`recon-harness leaderboard {root} --failures` says why)"
               if failed else "holds no finished units yet; run a sweep first")
        raise HarnessError("results", str(root), why)
    hours = _attack_hours(store, victims)
    p20 = {  # (unit, strategy) -> top-20 precision of the real victim's selection
        (s["unit_id"], s["strategy"]): s["precision"]
        for s in store.read("selection_scores", columns=["unit_id", "victim", "strategy", "k", "precision"]).to_pylist()
        if s["victim"] == "real" and s["k"] == P_AT
    }
    groups: dict[tuple, dict] = {}
    tasks: dict[str, dict] = {}  # setting id -> the task it hashes
    for v in victims:
        settings = json.loads(v["settings"])
        label, sid, tasks[sid] = _setting(settings, v.get("head_dims"), v.get("attack"))
        key = (v["model"], shown_model_id(v), v["revision"], v["task"], recipe_of(v, settings), sid)
        g = groups.setdefault(key, {"label": label, "real": [], "null": [], "units": set(), "failed": set()})
        g[v["victim"] if v["victim"] in ("real", "null") else "real"].append({**v, "replicate": _replicate(v, settings)})
        g["units"].add(v["unit_id"])
    done = {v["unit_id"] for v in victims}
    for f in store.read("failures", columns=["unit_id", "model", "model_id", "revision", "task", "settings"]).to_pylist():
        if f["unit_id"] in done:
            continue
        settings = json.loads(f["settings"])
        key = (f["model"], shown_model_id(f), f["revision"], f["task"], recipe_of({}, settings), _setting(settings)[1])
        if key in groups:  # a setting with no finished unit has no row to count it on: --failures lists it
            groups[key]["failed"].add(f["unit_id"])
    _distinguish(groups, tasks)
    rows = []
    for (model, model_id, revision, task, recipe, sid), g in groups.items():
        units = sorted(g["units"])
        # a replicate stored under two unit ids (one data file reached by two paths) counts once, by its latest unit;
        # costs (runs, hours) count every unit that ran
        spent = g["real"] + g["null"]
        real, null = _latest_per_replicate(g["real"]), _latest_per_replicate(g["null"])
        latest = max(real + null, key=lambda r: r["created_at"])
        # the attack's columns pool only the victims it measured: one whose every run diverged has no count to give
        scored = [r for r in real if measured(r)]
        rows.append({
            "model": model, "model_id": model_id, "kind": kind_of(json.loads(latest["settings"])), "revision": revision,
            "task": task, "recipe": recipe,
            "setting": g["label"], "setting_id": sid, "seeds": len({r["replicate"] for r in real}),
            "measured": len({r["replicate"] for r in scored}),
            "n_members": real[0]["n_members"] if real else None,
            "members_at_fpr": _avg(scores_by_rule(r)[1] for r in scored),
            "tpr_at_fpr": _avg(scores_by_rule(r)[0] for r in scored), "fpr": real[0]["fpr"] if real else None,
            "n_control": min((r["n_control"] for r in scored if r.get("n_control") is not None), default=None),
            "null_tpr_at_fpr": _avg(scores_by_rule(r)[0] for r in null if measured(r)),
            "good_at_0_8": _avg(r["good_at_0_8"] for r in scored), "good_at_0_9": _avg(r["good_at_0_9"] for r in scored),
            "good_ssim": _avg(r["good_ssim"] for r in scored),
            "good_beyond_public": _avg(by_rule(r, "good_ssim_beyond_public", "good_at_0_8_beyond_public") for r in scored),
            "public_good": _avg(by_rule(r, "public_good_ssim", "public_good_at_0_8") for r in scored),
            "good_first_half": _avg(by_rule(r, "good_ssim_first_half", "good_at_0_8_first_half") for r in scored),
            "selection_p20": _avg(p20.get((r["unit_id"], "cluster")) for r in scored),
            "baseline_p20": _avg(p20.get((r["unit_id"], "lowest-loss")) for r in scored),
            "victim_test_acc": _avg(r["test_acc"] for r in real),
            "active_share": _avg(r.get("active_share") for r in real),
            "oracle_residual": _avg(r.get("oracle_residual") for r in real),
            "stationarity_bound": _avg(r.get("stationarity_bound") for r in real),
            "effective_members": _avg(r.get("effective_members") for r in real),
            "in_row_space": _avg(r.get("in_row_space") for r in real),
            "own_pattern": _avg(r.get("own_pattern") for r in real),
            "dp_epsilon": _avg(r.get("dp_epsilon") for r in real),
            "runs": sum(r["n_runs"] or 0 for r in spent),
            "gpu_hours": sum(hours[u][0] for u in units), "cpu_hours": sum(hours[u][1] for u in units),
            "weights_source": latest["weights_source"], "versions": latest["versions"],
            "created_at": latest["created_at"].isoformat(), "unit_ids": ",".join(units), "failed": len(g["failed"]),
        })
    if sort not in NAMES:
        raise HarnessError("--sort", sort, f"not a leaderboard column{did_you_mean(sort, NAMES)}; columns: {', '.join(NAMES)}")
    present = [r for r in rows if r[sort] is not None]
    present.sort(key=lambda r: r[sort], reverse=not ascending)
    return present + [r for r in rows if r[sort] is None]
