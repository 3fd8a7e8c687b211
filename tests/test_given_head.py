"""A head given as a file (`run --head`): attacked as it is, in the frame saved with it, refusals naming --head."""

from __future__ import annotations

import json

import yaml

from harness.cli import main
from harness.store import ResultStore
from tests.test_cli import TINY_ATTACK, _bad, _run, _task


def test_attack_a_given_head_file(tmp_path, bert_card, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no --out: results/<task name>, as a sweep's default
    assert _run(_task(tmp_path, bert_card, null_victim=False), "--cache", tmp_path / "c") == 0
    out = tmp_path / "results" / "tiny"
    head = next((out / "heads").glob("*-real.safetensors"))
    out2 = tmp_path / "out2"
    assert _run(_task(tmp_path, bert_card), "--head", head, "--out", out2, "--cache", tmp_path / "c") == 0
    v = ResultStore(out2, create=False).read("victims").to_pylist()
    assert [r["victim"] for r in v] == ["real"] and v[0]["stopped_by"] == "given"
    assert (v[0]["head_activation"], v[0]["head_bias"]) == ("relu", "first")  # the task's defaults, as trained
    # what the harness-saved file states of its training is recorded beside trainer 'given' (not taken as checked)
    first = ResultStore(out, create=False).read("victims").to_pylist()[0]
    assert v[0]["trainer"] == "given" and json.loads(v[0]["trainer_info"])["stated"] == {
        "recipe": first["recipe"], "victim": "real", "unit_id": first["unit_id"], "loss": "logistic"}
    from harness.report import build_report

    page = build_report(out2, tmp_path / "given.html").read_text()
    assert "given head: what its file states" in page and f"unit_id {first['unit_id']}" in page and "relu, bias first" in page
    # a given head's own activation and bias are recorded, not the task's head settings
    from harness.heads.io import load_head, save_head
    from harness.heads.mlp import MLPHead

    tanh = MLPHead(load_head(head)[0].dims, bias="all", activation="tanh")
    save_head(tanh, tmp_path / "tanh.safetensors", {})
    out3 = tmp_path / "out3"
    assert _run(_task(tmp_path, bert_card), "--head", tmp_path / "tanh.safetensors", "--out", out3, "--cache", tmp_path / "c") == 0
    v = ResultStore(out3, create=False).read("victims").to_pylist()
    assert (v[0]["head_activation"], v[0]["head_bias"]) == ("tanh", "all")
    assert json.loads(v[0]["trainer_info"]) == {}  # its file states nothing of its training
    assert json.loads(v[0]["settings"])["task"]["head"]["bias"] == "first"  # what the task says, beside it
    # another head written over the same file is other work: a new unit id, and its rows supersede the old head's
    first_id = v[0]["unit_id"]
    save_head(MLPHead(load_head(head)[0].dims, bias="all", activation="relu"), tmp_path / "tanh.safetensors", {})
    assert _run(_task(tmp_path, bert_card), "--head", tmp_path / "tanh.safetensors", "--out", out3, "--cache", tmp_path / "c") == 0
    v = ResultStore(out3, create=False).read("victims").to_pylist()
    assert [r["head_activation"] for r in v] == ["relu"] and v[0]["unit_id"] != first_id
    assert json.loads(v[0]["settings"])["head_digest"]


def test_head_that_does_not_fit_the_embedding(tmp_path, bert_card, capsys):
    import torch

    from harness.heads.io import save_head
    from harness.heads.mlp import MLPHead

    head = tmp_path / "wrong.safetensors"
    save_head(MLPHead([384, 16, 1]), head, {}, mean=torch.zeros(384))
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card), "--head", head)
    assert "384-d" in line and "32-d" in line


def test_a_given_l2_head_is_attacked_on_normalised_inputs_as_it_was_trained(tmp_path, capsys):
    """The frame saved with an `l2` head says its inputs were L2-normalised: given back with --head, the pixels were
    only centred (another test accuracy and oracle residual than the victim's own), and the console named none+given."""
    from tests.conftest import CIFAR

    task = tmp_path / "px.yaml"
    task.write_text(yaml.safe_dump({
        "model": "identity", "data": {"source": str(CIFAR), "input_column": "img", "label_column": "label"},
        "classes": ["airplane", "automobile"], "per_class": 3, "nonmembers": 10, "null_victim": False,
        "head": {"widths": [16], "optimizer": "adam", "lr": 0.01, "max_steps": 50}, "attack": TINY_ATTACK}))
    assert main(["run", str(task), "--recipe", "l2+paper", "--out", str(tmp_path / "a"), "--no-evidence", "--quiet"]) == 0
    (trained,) = ResultStore(tmp_path / "a", create=False).read("victims").to_pylist()
    head = next((tmp_path / "a" / "heads").glob("*-real.safetensors"))
    assert main(["run", str(task), "--head", str(head), "--out", str(tmp_path / "b"), "--no-evidence"]) == 0
    assert "victim (real): l2+given" in " ".join(capsys.readouterr().err.split())
    (given,) = ResultStore(tmp_path / "b", create=False).read("victims").to_pylist()
    assert given["recipe"] == "l2+given" and given["l2_normalized"] is True
    assert given["test_acc"] == trained["test_acc"] and abs(given["oracle_residual"] - trained["oracle_residual"]) < 1e-6
