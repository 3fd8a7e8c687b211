"""The leaderboard's rows: seeds pooled per (model, revision, task, setting), recipes, labels, unmeasured victims."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.errors import HarnessError
from harness.leaderboard import build, render
from harness.store import ResultStore
from tests.leaderboard_rows import _victim, results  # noqa: F401 - `results` is a fixture


def test_the_control_size_is_the_fewest_of_the_seeds(tmp_path):
    store = ResultStore(tmp_path / "res")
    for seed, n in ((0, 20), (1, 40)):
        uid, real = _victim("bert", seed, "real", 2)
        store.write("victims", uid, [{**real, "n_control": n}])
    (row,) = build(tmp_path / "res")
    assert row["n_control"] == 20 and row["fpr"] == 0.01  # 20 resolve no rate below 5%: the reader can tell


def test_rows_pool_seeds_and_sort(results):
    rows = build(results)
    assert [(r["model"], r["setting"].split()[2]) for r in rows] == [("vit", "wd=0"), ("vit", "wd=0.01"), ("bert", "wd=0")]
    vit = rows[0]
    assert vit["seeds"] == 2 and vit["members_at_fpr"] == 3.0 and vit["tpr_at_fpr"] == 0.75
    assert vit["null_tpr_at_fpr"] == 0.0 and vit["good_at_0_9"] == 1.5 and vit["runs"] == 12
    assert vit["selection_p20"] == pytest.approx(0.6) and vit["baseline_p20"] == pytest.approx(0.25)
    assert rows[1]["selection_p20"] is None  # that unit recorded no selection
    assert vit["good_ssim"] == 2.0 and rows[2]["good_ssim"] is None
    assert vit["good_beyond_public"] == 1.0 and vit["public_good"] == 1.0  # by SSIM: (2 + 0) / 2, a pixel victim's rule
    assert rows[2]["good_beyond_public"] == 1.0 and rows[2]["public_good"] == 0.0  # by cosine for the text one
    assert vit["good_first_half"] == 1.0 and rows[2]["good_first_half"] == 0.0  # by SSIM ((2 + 0) / 2), by cosine (1)
    assert vit["gpu_hours"] == pytest.approx(0.5) and vit["cpu_hours"] == pytest.approx(1.0)
    assert vit["revision"] == "a" * 40 and vit["created_at"].startswith("2026-01-02") and len(vit["unit_ids"].split(",")) == 2
    assert [r["model"] for r in build(results, sort="members_at_fpr", ascending=True)][0] == "bert"
    with pytest.raises(HarnessError, match="did you mean 'tpr_at_fpr'"):
        build(results, sort="tpr_at_fp")
    with pytest.raises(HarnessError, match="did you mean 'tpr_at_fpr'"):  # the column holding it, not 'fpr' one letter off
        build(results, sort="tpr")


def test_hours_of_units_run_wrote_come_from_their_attack_time_and_device(tmp_path):
    """`run` writes no shards: its units' hours are the victims' attack seconds x the threads (or one GPU) they record."""
    store = ResultStore(tmp_path / "res")
    for model, wd, device, seconds in (("bert", 0.0, "cpu x2", (360.0, 180.0)), ("vit", 0.0, "NVIDIA H200", (720.0, 0.0))):
        uid, real = _victim(model, 0, "real", 2, wd)
        _, null = _victim(model, 0, "null", 0, wd)
        store.write("victims", uid, [{**real, "attack_s": seconds[0], "device": device},
                                     {**null, "attack_s": seconds[1], "device": device}])
    rows = {r["model"]: r for r in build(tmp_path / "res")}
    assert rows["bert"]["cpu_hours"] == pytest.approx(0.3) and rows["bert"]["gpu_hours"] == 0  # (360 + 180) s x 2 threads
    assert rows["bert"]["n_control"] is None  # rows written before the column: unknown, not 0
    assert rows["vit"]["gpu_hours"] == pytest.approx(0.2) and rows["vit"]["cpu_hours"] == 0


def test_rows_group_by_recipe(tmp_path):
    """Two recipes of one setting: a row each (same setting id), seeds pooled within a recipe; results written before
    recipes (no recipe columns, no victim in the settings) read as none+paper, a given head of that time as '-'."""
    import pyarrow as pa

    from harness.store.schemas import SCHEMAS

    store = ResultStore(tmp_path / "res")
    recipes = {"standardize+paper": ({"transform": "standardize", "trainer": "paper"}, [4, 3], 0.4),
               "standardize+sklearn-mlp": ({"transform": "standardize", "trainer": "sklearn-mlp"}, [0, 0], 1.0)}
    for label, (victim, passed, share) in recipes.items():
        for seed in (0, 1):
            uid, real = _victim("minilm", seed, "real", passed[seed], victim=victim)
            _, null = _victim("minilm", seed, "null", 0, victim=victim)
            real.update(recipe=label, transform=victim["transform"], trainer=victim["trainer"], active_share=share + 0.1 * seed,
                        effective_members=7.0 + seed, in_row_space=5 + seed, own_pattern=4 + seed, oracle_residual=share / 10 + seed,
                        stationarity_bound=(share / 5 + seed) if victim["trainer"] == "paper" else None)
            store.write("victims", uid, [real, null])
    eps = {"transform": "standardize", "trainer": "dp-sgd", "params": {"epsilon": 8.0}}
    uid, dp = _victim("minilm", 0, "real", 1, victim=eps)
    store.write("victims", uid, [{**dp, "recipe": "standardize+dp-sgd", "dp_epsilon": 7.9}])
    # an older results file: written before the recipe columns, its settings without `victim`
    old_cols = ("recipe", "transform", "trainer", "trainer_params", "trainer_info", "dp_epsilon", "active_share", "typical_norm",
                "effective_members", "in_row_space", "own_pattern")
    schema = pa.schema([f for f in SCHEMAS["victims"] if f.name not in old_cols], metadata=SCHEMAS["victims"].metadata)
    for uid, head_file, passed in (("u-old", None, 2), ("u-old-given", "given.safetensors", 1)):
        _, old = _victim("minilm", 0, "real", passed)
        settings = json.loads(old["settings"])
        settings["task"].pop("victim")
        settings["head_file"] = head_file
        old = {k: v for k, v in old.items() if k not in old_cols} | {"unit_id": uid, "settings": json.dumps(settings)}
        pq.write_table(pa.Table.from_pylist([old], schema=schema), store.path("victims", uid))
    rows = build(tmp_path / "res")
    by = {r["recipe"]: r for r in rows}
    assert [r["recipe"] for r in rows] == ["standardize+paper", "none+paper", "standardize+dp-sgd", "-", "standardize+sklearn-mlp"]
    sp, mlp = by["standardize+paper"], by["standardize+sklearn-mlp"]
    assert sp["seeds"] == mlp["seeds"] == 2 and sp["members_at_fpr"] == 3.5 and mlp["members_at_fpr"] == 0.0
    assert sp["setting_id"] == mlp["setting_id"] == by["none+paper"]["setting_id"]
    # the task's weight decay is named for the trainers that train with it, not sklearn-mlp (its own alpha)
    assert " wd=0 " in sp["setting"] and " wd=" not in mlp["setting"] and sp["setting"].replace(" wd=0", "") == mlp["setting"]
    assert sp["active_share"] == pytest.approx(0.45) and mlp["active_share"] == pytest.approx(1.05) and sp["dp_epsilon"] is None
    dp_row = by["standardize+dp-sgd"]
    assert dp_row["dp_epsilon"] == 7.9 and "epsilon=8.0" in dp_row["setting"] and dp_row["setting_id"] != sp["setting_id"]
    assert by["none+paper"]["active_share"] is None and by["none+paper"]["members_at_fpr"] == 2
    assert sp["effective_members"] == pytest.approx(7.5) and by["none+paper"]["effective_members"] is None
    assert sp["in_row_space"] == pytest.approx(5.5) and by["none+paper"]["in_row_space"] is None
    assert sp["own_pattern"] == pytest.approx(4.5) and by["none+paper"]["own_pattern"] is None
    assert sp["oracle_residual"] == pytest.approx(0.54) and mlp["oracle_residual"] == pytest.approx(0.6)
    assert sp["stationarity_bound"] == pytest.approx(0.58) and mlp["stationarity_bound"] is None
    md = render(rows, "md").decode().splitlines()
    header = [c.strip() for c in md[0].strip("|").split("|")]
    assert header[:6] == ["model", "model_id", "kind", "revision", "task", "recipe"] and "dp_epsilon" in header
    assert [line.split("|")[6].strip() for line in md[2:]] == [r["recipe"] for r in rows]
    assert pq.read_table(pa.BufferReader(render(rows, "parquet"))).column("recipe").to_pylist() == [r["recipe"] for r in rows]


def test_backbone_and_classifier_cards_mix(tmp_path):
    """A fine-tuned checkpoint's own head sits beside trained heads: kind classifier, recipe 'checkpoint',
    its checkpoint's revision, a setting that does not claim the task's head widths."""
    store = ResultStore(tmp_path / "res")
    uid, trained = _victim("minilm", 0, "real", 2)
    store.write("victims", uid, [trained])
    uid, ckpt = _victim("minilm-sst2-finetuned", 0, "real", 0)
    settings = json.loads(ckpt["settings"]) | {"card": {"kind": "classifier"}}
    store.write("victims", uid, [ckpt | {"settings": json.dumps(settings), "revision": "c" * 40, "recipe": "none+given"}])
    by = {r["model"]: r for r in build(tmp_path / "res")}
    assert by["minilm"]["kind"] == "backbone" and by["minilm"]["recipe"] == "none+paper"
    fine = by["minilm-sst2-finetuned"]
    assert fine["kind"] == "classifier" and fine["recipe"] == "checkpoint" and fine["revision"] == "c" * 40
    assert "head=checkpoint" in fine["setting"] and "head=16 wd=0" in by["minilm"]["setting"]


@pytest.mark.parametrize("dims,label", [([384, 100, 1], "head=100 "), ([384, 1], "head=linear "), (None, "head=16 ")])
def test_the_setting_names_the_head_as_trained(tmp_path, dims, label):
    """sklearn-mlp has its own width and linear none: the label reads the row's head, not the task's widths."""
    store = ResultStore(tmp_path / "res")
    uid, row = _victim("minilm", 0, "real", 1)
    store.write("victims", uid, [row | {"head_dims": dims}])
    assert label in build(tmp_path / "res")[0]["setting"]


def test_a_cosine_schedule_is_its_own_setting_and_old_rows_read_as_constant(tmp_path):
    """head.lr_schedule: cosine names itself in the setting and gets its own row; results written before the field
    (no lr_schedule in their settings) pool with constant-schedule rows of the same setting."""
    store = ResultStore(tmp_path / "res")
    for seed, schedule in ((0, "constant"), (1, None), (2, "cosine")):
        uid, row = _victim("minilm", seed, "real", 1 + seed)
        settings = json.loads(row["settings"])
        if schedule is None:
            settings["task"]["head"].pop("lr_schedule")
        else:
            settings["task"]["head"]["lr_schedule"] = schedule
        store.write("victims", uid, [row | {"settings": json.dumps(settings)}])
    rows = build(tmp_path / "res")
    by = {"cosine" if "lr_schedule=cosine" in r["setting"] else "constant": r for r in rows}
    assert len(rows) == 2 and by["constant"]["seeds"] == 2 and by["cosine"]["seeds"] == 1
    assert "lr_schedule" not in by["constant"]["setting"] and by["constant"]["setting_id"] != by["cosine"]["setting_id"]


def test_a_row_without_a_later_field_reads_as_its_default_anywhere_in_the_task(tmp_path):
    """Any field a row lacks (a spec field added after it was written) is the schema's default: the row pools with
    rows that state the default, nested specs included, and not with rows that set another value."""
    store = ResultStore(tmp_path / "res")
    for seed, drop, value in ((0, None, None), (1, ("evidence", "min_cosine"), None), (2, ("head", "plateau_tol"), None),
                              (3, ("head", "plateau_tol"), 0.5)):
        uid, row = _victim("minilm", seed, "real", 1 + seed)
        settings = json.loads(row["settings"])
        if drop and value is None:
            settings["task"][drop[0]].pop(drop[1])
        elif drop:
            settings["task"][drop[0]][drop[1]] = value
        store.write("victims", uid, [row | {"settings": json.dumps(settings)}])
    rows = build(tmp_path / "res")
    assert sorted(r["seeds"] for r in rows) == [1, 3], [(r["setting"], r["seeds"]) for r in rows]


def test_a_victim_the_attack_measured_nothing_is_left_out_not_counted_as_zero(tmp_path):
    """Every run diverged: no candidate, a null TPR, and counts that read null (or 0, as older rows wrote them). Such a
    seed is not 0 members recovered: the attack columns pool the measured seeds only, `measured` says how many, and a
    setting no seed of which was measured shows its counts empty, not 0."""
    store = ResultStore(tmp_path / "res")
    unmeasured = {"n_candidates": 0, "tpr_at_fpr": None}
    for seed, over in ((0, {"n_candidates": 12}), (1, unmeasured | {"members_passed": 0, "good_at_0_8": 0, "good_at_0_9": 0}),
                       (2, unmeasured | {"tpr_at_fpr": float("nan"), "members_passed": None, "good_at_0_8": None,
                                         "good_at_0_9": None, "good_at_0_8_beyond_public": None})):
        uid, real = _victim("bert", seed, "real", 4)
        _, null = _victim("bert", seed, "null", 0)
        store.write("victims", uid, [real | over, null | ({} if seed == 0 else over)])
    for seed in (0, 1):  # another setting: every seed diverged (rows of an older writer: counts 0, TPR null)
        uid, real = _victim("bert", seed, "real", 0, wd=0.5)
        store.write("victims", uid, [real | unmeasured])
    rows = build(tmp_path / "res")
    by = {r["setting_id"]: r for r in rows}
    assert len(by) == 2
    some, none = sorted(by.values(), key=lambda r: "wd=0.5" in r["setting"])
    assert some["members_at_fpr"] == 4 and some["tpr_at_fpr"] == 1.0 and some["good_at_0_8"] == 4 and some["good_at_0_9"] == 2
    assert some["good_beyond_public"] == 4 and some["null_tpr_at_fpr"] == 0.0 and some["victim_test_acc"] == 0.9
    assert all(none[c] is None for c in ("members_at_fpr", "tpr_at_fpr", "good_at_0_8", "good_at_0_9", "good_beyond_public",
                                        "public_good", "n_control"))
    assert none["victim_test_acc"] == 0.9  # the victim was trained and tested: only the attack measured nothing
    assert some["seeds"] == 3 and some["measured"] == 1 and none["seeds"] == 2 and none["measured"] == 0
    assert rows[-1] is none  # sorted after every measured row
    md = render(rows, "md").decode().splitlines()
    cells = dict(zip([c.strip() for c in md[0].strip("|").split("|")], (c.strip() for c in md[3].strip("|").split("|"))))
    assert cells["measured"] == "0" and cells["members_at_fpr"] == "-" and cells["good_at_0_8"] == "-"
    assert pq.read_table(pa.BufferReader(render(rows, "parquet"))).column("measured").to_pylist() == [1, 0]


def _grid_row(model, seed, lr, classes, dims=None, passed=1):
    uid, row = _victim(model, seed, "real", passed)
    settings = json.loads(row["settings"])
    settings["task"]["head"]["lr"] = lr
    settings["task"]["classes"] = classes
    uid = f"{uid}-{lr}-{'-'.join(classes)}-{dims}"
    return uid, row | {"unit_id": uid, "settings": json.dumps(settings), "head_dims": dims}


def test_settings_of_one_model_and_task_that_differ_in_unlabelled_fields_say_how(tmp_path):
    """A grid over head.lr and classes: the members count, head and attack budget are the same, so the label names
    the fields the settings differ in; a setting alone under its model and task keeps the short label."""
    store = ResultStore(tmp_path / "res")
    for lr in (0.01, 0.001):
        for classes in (["airplane", "automobile"], ["airplane", "cat"]):
            for seed in (0, 1):
                uid, row = _grid_row("vit", seed, lr, classes)
                store.write("victims", uid, [row])
    uid, row = _grid_row("bert", 0, 0.001, ["airplane", "cat"])  # another model: nothing to tell apart
    store.write("victims", uid, [row])
    rows = build(tmp_path / "res")
    vit = [r for r in rows if r["model"] == "vit"]
    assert len(vit) == 4 and all(r["seeds"] == 2 for r in vit)
    labels = {r["setting"] for r in vit}
    assert len(labels) == 4, labels
    assert {lab.split(" kkt-reference ")[1] for lab in labels} == {
        f"m=4 restarts=3 iterations=5 classes=[airplane,{c}] head.lr={lr}" for lr in ("0.01", "0.001") for c in ("automobile", "cat")}
    (bert,) = [r for r in rows if r["model"] == "bert"]
    assert bert["setting"] == "n=2x2 head=16 wd=0 kkt-reference m=4 restarts=3 iterations=5"
    md = render(rows, "md").decode().splitlines()[2:]
    settings = [line.split("|")[7].strip() for line in md]
    assert len(set(settings[:4])) == 4 and "head.lr=0.01" in md[0] + md[1] + md[2] + md[3]


def test_labels_that_name_the_trained_head_still_differ_when_the_task_widths_do(tmp_path):
    """A trainer with its own head (sklearn-mlp: 100 hidden units) under two task widths: the label reads head=100 for
    both, so the task's head.widths is named too."""
    store = ResultStore(tmp_path / "res")
    for widths in ([16], [32]):
        uid, row = _victim("bert", 0, "real", 1)
        settings = json.loads(row["settings"])
        settings["task"]["head"]["widths"] = widths
        uid = f"{uid}-{widths[0]}"
        store.write("victims", uid, [row | {"unit_id": uid, "settings": json.dumps(settings), "head_dims": [384, 100, 1]}])
    labels = sorted(r["setting"] for r in build(tmp_path / "res"))
    assert labels == [f"n=2x2 head=100 wd=0 kkt-reference m=4 restarts=3 iterations=5 head.widths=[{w}]" for w in (16, 32)]


def test_a_linear_heads_setting_names_the_weighted_sum_that_ran_not_the_tasks_search():
    from harness.leaderboard.build import _setting

    task = {"name": "t", "model": "m", "data": {"source": "x.parquet", "input_column": "sentence"}, "classes": ["a", "b"],
            "per_class": 10, "attack": {"name": "kkt", "params": {"m": 20, "restarts": 4}},
            "victim": {"transform": "standardize", "trainer": "linear"}}
    label, _, _ = _setting({"task": task}, [384, 1], "weighted-sum")
    assert label == "n=10x2 head=linear weighted-sum", label
    label, _, _ = _setting({"task": {**task, "victim": {"transform": "none", "trainer": "paper"}}}, [384, 1000, 1], "kkt")
    assert label == "n=10x2 head=1000 wd=0 kkt m=20 restarts=4", label
