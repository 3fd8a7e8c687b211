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

    page = build_report(out2, tmp_path / "given.html").read_text(encoding="utf-8")
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


def _pixel_task(tmp_path, **over):
    from tests.conftest import CIFAR

    task = tmp_path / f"px{len(over)}.yaml"
    task.write_text(yaml.safe_dump({
        "model": "identity", "data": {"source": str(CIFAR), "input_column": "img", "label_column": "label"},
        "classes": ["airplane", "automobile"], "per_class": 3, "nonmembers": 10, "null_victim": False,
        "head": {"widths": [16], "optimizer": "adam", "lr": 0.01, "max_steps": 50}, "attack": TINY_ATTACK, **over}))
    return task


def test_a_head_file_without_its_frame_is_taken_in_the_task_s_transform_fitted_on_its_members(tmp_path, capsys):
    """A plain head file (no member_mean, no frame_scale) is attacked in the task's victim.transform, fitted on the
    task's members as the recipes fit it (it was centred only, and recorded as the task's transform), and says so."""
    from safetensors.torch import load_file, save_file

    task = _pixel_task(tmp_path, victim={"transform": "standardize"})
    assert main(["run", str(task), "--out", str(tmp_path / "a"), "--no-evidence", "--quiet"]) == 0
    (trained,) = ResultStore(tmp_path / "a", create=False).read("victims").to_pylist()
    head = next((tmp_path / "a" / "heads").glob("*-real.safetensors"))
    bare = tmp_path / "bare.safetensors"
    save_file({k: v for k, v in load_file(head).items() if k.startswith("layers.")}, bare)  # no frame, no metadata
    capsys.readouterr()
    assert main(["run", str(task), "--head", str(bare), "--out", str(tmp_path / "b"), "--no-evidence"]) == 0
    assert "saves no input frame" in " ".join(capsys.readouterr().err.split())
    (given,) = ResultStore(tmp_path / "b", create=False).read("victims").to_pylist()
    assert given["recipe"] == "standardize+given" and given["test_acc"] == trained["test_acc"]
    assert abs(given["oracle_residual"] - trained["oracle_residual"]) < 1e-6 and given["train_acc"] == trained["train_acc"]


def test_a_frame_saved_from_normalised_inputs_normalises_them_whatever_the_task_says(tmp_path):
    """A head's saved frame says whether its inputs were L2-normalised (`frame.l2`): given to a task that does not
    normalise, the inputs are normalised as they were in training (they were taken raw)."""
    task = _pixel_task(tmp_path, head={"widths": [16], "optimizer": "adam", "lr": 0.01, "max_steps": 50, "l2_normalize": True})
    assert main(["run", str(task), "--recipe", "standardize+paper", "--out", str(tmp_path / "a"), "--no-evidence", "--quiet"]) == 0
    (trained,) = ResultStore(tmp_path / "a", create=False).read("victims").to_pylist()
    head = next((tmp_path / "a" / "heads").glob("*-real.safetensors"))
    plain = _pixel_task(tmp_path)  # l2_normalize not set: the identity card does not normalise
    assert main(["run", str(plain), "--head", str(head), "--out", str(tmp_path / "b"), "--no-evidence", "--quiet"]) == 0
    (given,) = ResultStore(tmp_path / "b", create=False).read("victims").to_pylist()
    assert given["l2_normalized"] is True and given["recipe"] == "standardize+given"
    assert given["test_acc"] == trained["test_acc"] and abs(given["oracle_residual"] - trained["oracle_residual"]) < 1e-6


def test_a_head_whose_members_do_not_fit_it_is_said_to_be_in_doubt(tmp_path, capsys):
    """A given head that misclassifies the task's members (here: the classes in the reverse order of its outputs) is
    recorded with that accuracy, and the run summary and the report say the counts may not be about its training data."""
    task = _pixel_task(tmp_path)
    assert main(["run", str(task), "--out", str(tmp_path / "a"), "--no-evidence", "--quiet"]) == 0
    head = next((tmp_path / "a" / "heads").glob("*-real.safetensors"))
    (trained,) = ResultStore(tmp_path / "a", create=False).read("victims").to_pylist()
    assert trained["train_acc"] == 1.0
    capsys.readouterr()
    reversed_ = _pixel_task(tmp_path, classes=["automobile", "airplane"], seed=0)
    assert main(["run", str(reversed_), "--head", str(head), "--out", str(tmp_path / "b"), "--no-evidence"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "Given head: it classifies the task's members at accuracy" in said
    assert "(far below chance: is `classes:` in the reverse order of its outputs?)" in said
    (given,) = ResultStore(tmp_path / "b", create=False).read("victims").to_pylist()
    assert given["train_acc"] < 0.25
    from harness.report import build_report

    assert "<b>But:</b> Given head: it classifies" in build_report(tmp_path / "b", tmp_path / "r.html").read_text(encoding="utf-8")
    # the same head on the task it was trained on fits its members (its 50 steps left it far from a KKT point: that
    # doubt stays)
    capsys.readouterr()
    assert main(["run", str(task), "--head", str(head), "--out", str(tmp_path / "c"), "--no-evidence"]) == 0
    assert "it classifies the task's members" not in " ".join(capsys.readouterr().out.split())


def test_head_files_as_other_tools_write_them(tmp_path):
    """float64 (scikit-learn's) is loaded in float32; a scale that is 0 (a float16 save of a scaler's tiny scales) or a
    frame that names another transform than it holds is refused in one line; a scale without metadata is standardised."""
    import pytest
    import torch
    from safetensors.torch import save_file

    from harness.errors import HarnessError
    from harness.heads.io import load_head

    layers = {"layers.0.weight": torch.randn(4, 3, dtype=torch.float64), "layers.1.weight": torch.randn(1, 4, dtype=torch.float64)}
    save_file(layers, tmp_path / "f64.safetensors")
    head, _, frame = load_head(tmp_path / "f64.safetensors")
    assert all(p.dtype == torch.float32 for p in head.parameters()) and frame is None
    save_file({**layers, "member_mean": torch.zeros(3), "frame_scale": torch.ones(3)}, tmp_path / "std.safetensors")
    assert load_head(tmp_path / "std.safetensors")[2].transform == "standardize"
    save_file({**layers, "member_mean": torch.zeros(3), "frame_scale": torch.tensor([1.0, 0.0, 1.0])}, tmp_path / "zero.safetensors")
    with pytest.raises(HarnessError, match="frame_scale holds 1 values that are not finite and positive"):
        load_head(tmp_path / "zero.safetensors")
    save_file({**layers, "member_mean": torch.zeros(3)}, tmp_path / "says.safetensors",
              metadata={"recon_harness_head": json.dumps({"frame": {"transform": "standardize"}})})
    with pytest.raises(HarnessError, match="names transform 'standardize' but saves no frame_scale"):
        load_head(tmp_path / "says.safetensors")


def test_a_head_with_one_output_per_class_names_the_loss_that_fits_it(tmp_path, capsys):
    import torch

    from harness.heads.io import save_head
    from harness.heads.mlp import MLPHead

    save_head(MLPHead([3072, 8, 2]), tmp_path / "two.safetensors", {}, mean=torch.zeros(3072))
    assert main(["run", str(_pixel_task(tmp_path)), "--head", str(tmp_path / "two.safetensors"), "--out", str(tmp_path / "o")]) == 2
    assert "set head.loss: ce in the task" in " ".join(capsys.readouterr().err.split())


def test_a_raw_head_is_saved_with_a_zero_mean_and_given_back_as_trained(tmp_path):
    """`raw`: the embeddings as they are; its file's mean is zero and its frame reads back as raw."""
    from harness.heads.io import load_head

    task = _pixel_task(tmp_path)
    assert main(["run", str(task), "--recipe", "raw+paper", "--out", str(tmp_path / "a"), "--no-evidence", "--quiet"]) == 0
    (trained,) = ResultStore(tmp_path / "a", create=False).read("victims").to_pylist()
    head = next((tmp_path / "a" / "heads").glob("*-real.safetensors"))
    _, _, frame = load_head(head)
    assert trained["transform"] == "raw" and frame.transform == "raw" and not frame.mean.any()
    assert main(["run", str(task), "--head", str(head), "--out", str(tmp_path / "b"), "--no-evidence", "--quiet"]) == 0
    (given,) = ResultStore(tmp_path / "b", create=False).read("victims").to_pylist()
    assert given["recipe"] == "raw+given" and given["test_acc"] == trained["test_acc"]
    assert abs(given["oracle_residual"] - trained["oracle_residual"]) < 1e-6


def test_a_control_matched_as_closely_as_a_reconstruction_is_said_to_be_in_doubt():
    """A head that saw some of the task's non-members (measured: members + 20 non-members, threshold 0.988, TPR 0.05)
    reconstructs them too: the threshold is then itself a reconstruction, and the verdict says so (embeddings only:
    pixel verdicts read SSIM)."""
    from harness.report.glance import verdict_html
    from harness.scoring.verdict import control_doubt

    assert control_doubt(0.36, 0.01, False) is None and control_doubt(0.95, 0.01, True) is None
    assert control_doubt(None, 0.01, False) is None
    said = control_doubt(0.988, 0.01, False)
    assert said.startswith("The 1%-FPR threshold is itself a reconstruction (cosine 0.988 > 0.8)")
    row = {"n_members": 20, "members_passed": 1, "fpr": 0.01, "good_at_0_8": 6, "good_ssim": None, "threshold": 0.988,
           "head_dims": [384, 1000, 1], "trainer": "given", "train_acc": 1.0, "oracle_residual": 0.39, "num_classes": 2}
    assert "<b>But:</b> The 1%-FPR threshold is itself a reconstruction" in verdict_html(row)
