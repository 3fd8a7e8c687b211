"""What the leaderboard pools into one row and counts there: replicates, local data by content, evidence settings no
column reads, pixel victims by their SSIM rule (as the report), and the units of a setting that failed."""

from __future__ import annotations

import json

from harness.leaderboard import build
from harness.store import ResultStore
from harness.store.schemas import SCHEMAS
from tests.leaderboard_rows import _victim


def _edit(row: dict, uid: str, change) -> dict:
    settings = json.loads(row["settings"])
    change(settings)
    return {**row, "unit_id": uid, "settings": json.dumps(settings)}


def _attack_seed(seed):
    def change(s):
        s["task"]["attack"]["params"]["seed"] = seed
    return change


def test_two_attack_seeds_of_one_task_seed_are_two_replicates(tmp_path):
    store = ResultStore(tmp_path)
    _, a = _victim("bert", 0, "real", 4)
    _, b = _victim("bert", 0, "real", 2)
    store.write("victims", "u-a", [_edit(a, "u-a", _attack_seed(None))])
    store.write("victims", "u-b", [_edit(b, "u-b", _attack_seed(5))])
    (row,) = build(tmp_path)
    assert (row["seeds"], row["measured"], row["members_at_fpr"]) == (2, 2, 3)  # said 1 seed, averaged over 2


def test_local_data_is_one_setting_however_its_path_is_written_and_two_when_its_content_differs(tmp_path):
    store = ResultStore(tmp_path)

    def data(source, digest):
        def change(s):
            s["task"]["data"]["source"] = source
            s["data_digest"] = digest
        return change

    for uid, seed, source, digest in (("u-0", 0, "../fx/d.parquet", "aa"), ("u-1", 1, "../../fx/d.parquet", "aa"),
                                      ("u-2", 2, "../fx/d.parquet", "bb")):
        _, row = _victim("bert", seed, "real", 2)
        store.write("victims", uid, [_edit(row, uid, data(source, digest))])
    rows = build(tmp_path)
    assert sorted(r["seeds"] for r in rows) == [1, 2]
    assert all("sha256:" in r["setting"] for r in rows)  # the two contents are told apart by what they hold
    _, row = _victim("bert", 3, "real", 2)  # a release before digests: what the file held then is not known
    store.write("victims", "u-3", [_edit(row, "u-3", data("../fx/d.parquet", None))])
    old = [r for r in build(tmp_path) if "sha256:" not in r["setting"]]
    assert len(old) == 1 and "data.source=d.parquet (content not recorded)" in old[0]["setting"]


def test_a_run_without_evidence_pools_with_its_setting(tmp_path):
    store = ResultStore(tmp_path)

    def no_evidence(s):
        s["task"]["evidence"] = {**s["task"].get("evidence", {}), "enabled": False, "invert_top": 3}

    _, a = _victim("bert", 0, "real", 4)
    _, b = _victim("bert", 1, "real", 2)
    store.write("victims", "u-a", [a])
    store.write("victims", "u-b", [_edit(b, "u-b", no_evidence)])
    (row,) = build(tmp_path)
    assert row["seeds"] == 2 and "evidence" not in row["setting"]


def test_pixel_victims_pass_by_ssim_as_the_report_says(tmp_path):
    store = ResultStore(tmp_path)
    _, real = _victim("vit", 0, "real", 2)  # cosine: 2 of 4 pass, TPR 0.5
    _, null = _victim("vit", 0, "null", 0)
    real = {**real, "ssim_tpr_at_fpr": 1.0}
    null = {**null, "good_ssim": 0, "ssim_tpr_at_fpr": 0.25}
    store.write("victims", real["unit_id"], [real, null])
    (row,) = build(tmp_path)
    assert (row["tpr_at_fpr"], row["members_at_fpr"], row["null_tpr_at_fpr"]) == (1.0, 4, 0.25)


def test_units_of_a_setting_that_failed_are_counted_on_its_row(tmp_path):
    store = ResultStore(tmp_path)
    uid, real = _victim("bert", 0, "real", 2)
    store.write("victims", uid, [real])
    _, failed = _victim("bert", 1, "real", 0)
    row = {f.name: None for f in SCHEMAS["failures"]} | {k: failed[k] for k in (
        "task", "model", "model_id", "revision", "weights_source", "seed", "settings", "versions", "created_at")}
    store.write("failures", "u-failed", [{**row, "unit_id": "u-failed", "stage": "train", "error_type": "E", "message": "m"}], "train")
    (board,) = build(tmp_path)
    assert board["failed"] == 1 and board["seeds"] == 1


def test_one_replicate_stored_under_two_unit_ids_counts_once_by_its_latest_unit(tmp_path):
    """The same data reached by two paths gives two unit ids for one replicate: its latest unit is the one counted
    (it was averaged in twice under one seed); the runs both spent still count."""
    from datetime import datetime, timezone

    store = ResultStore(tmp_path)
    _, old = _victim("bert", 0, "real", 4)
    _, new = _victim("bert", 0, "real", 2)
    store.write("victims", "u-old", [{**old, "unit_id": "u-old"}])
    store.write("victims", "u-new", [{**new, "unit_id": "u-new", "created_at": datetime(2026, 2, 1, tzinfo=timezone.utc)}])
    (row,) = build(tmp_path)
    assert (row["seeds"], row["members_at_fpr"], row["runs"]) == (1, 2, 6)


def test_a_local_checkpoints_path_stays_off_the_board(tmp_path):
    """A fine-tuned checkpoint in a local directory: its path (user and project names) is not exported; its folder
    name and its revision (a digest of its files) say which one it is."""
    store = ResultStore(tmp_path)
    _, row = _victim("ckpt", 0, "real", 2)
    store.write("victims", "u-local", [{**row, "unit_id": "u-local", "model_id": "/home/alice/secret-project/ckpt",
                                        "revision": "local-0123456789ab", "weights_source": "local-dir"}])
    (board,) = build(tmp_path)
    assert board["model_id"] == "local:ckpt" and "alice" not in json.dumps(board, default=str)
