"""Victim recipes: each input transform and trainer builds a real head, records itself, and bad recipes
are one line; the linear probe is scored as the weighted sum it is."""

from __future__ import annotations

import dataclasses
import pickle
import sys

import pytest
import torch
import yaml
from pydantic import ValidationError

from harness.errors import HarnessError
from harness.pipeline.stages import Embedded, attack_stage, score_stage, start_pool
from harness.scoring.embedding import cosine_matrix
from harness.scoring.verdict import verdict
from harness.specs.task import AttackRecipe, HeadRecipe
from harness.victims.build import TrainingDiverged, VictimData, build_victim, recipe_parts
from harness.victims.spec import VictimSpec
from tests.conftest import ROOT, SST2

HEAD = HeadRecipe(widths=[32], init_scale=0.01, optimizer="adam", lr=0.01, weight_decay=1e-3, max_steps=300)


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=12, d=10, seed=0) -> VictimData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, d, generator=g) * 3 + 5 + y[:, None] * 2.0  # off-centre, unscaled: transforms have work to do
    yp = torch.arange(40) % 2
    xp = torch.randn(40, d, generator=g) * 3 + 5 + yp[:, None] * 2.0
    xn = torch.randn(n, d, generator=g) * 3 + 5
    return VictimData(x, y, 2, xp, yp, xn, y.clone())


def test_the_attack_starts_at_the_public_rows_through_the_victims_frame():
    """attack_stage hands the attacker the public non-members in the victim's frame: kkt's public starts,
    mapped back to the scoring space, sit on the public rows (centred by the member mean)."""
    data = _data()
    v = build_victim(VictimSpec(transform="standardize"), HEAD, data, seed=0)
    mean = data.members.mean(0)
    emb = Embedded(data.members - mean, data.public - mean, mean, False, True, 0.0, raw=torch.cat([data.members, data.public]))
    params = {"m": 8, "restarts": 2, "iterations": 2, "rungs": 0, "lr": 1e-6, "subspace": "off", "init": "public",
              "init_scale": 1.0}
    res = attack_stage(v, emb, HEAD, AttackRecipe(name="kkt", params=params), 2, False, False)
    cos = torch.nn.functional.normalize(res.candidates.double(), dim=1) @ torch.nn.functional.normalize(emb.nonmembers.double(), dim=1).T
    assert (cos.max(1).values > 0.99).all()


def test_a_pixel_attack_left_at_auto_starts_mixed_from_the_pool_half_only():
    """kkt's default `init: auto` on a box-prior (pixel) victim: rows and public starts, the public ones drawn from
    the pool half of the non-members only (the other half is the scored control), and the result says mixed."""
    data = _data()
    v = build_victim(VictimSpec(transform="none"), HEAD, data, seed=0)
    mean = data.members.mean(0)
    emb = Embedded(data.members - mean, data.public - mean, mean, False, True, 0.0, raw=torch.cat([data.members, data.public]))
    params = {"m": 8, "restarts": 2, "iterations": 2, "rungs": 0, "lr": 1e-6, "subspace": "off"}
    res = attack_stage(v, emb, HEAD, AttackRecipe(name="kkt", params=params), 2, True, False)
    assert res.params["init"] == "mixed" and [r.settings["init"] for r in res.runs] == ["rows", "public"]
    pool, control = start_pool(res.params, len(emb.nonmembers))
    public_starts = res.candidates[res.run_ids == 1]
    assert (cosine_matrix(public_starts, emb.nonmembers[pool]).max(1).values > 0.99).all()
    assert (cosine_matrix(public_starts, emb.nonmembers[control]).max(1).values < 0.99).all()
    text = attack_stage(v, emb, HEAD, AttackRecipe(name="kkt", params=params), 2, False, False)
    assert text.params["init"] == "rows"  # embedding heads keep rows
    sklearn = dataclasses.replace(v, recipe=VictimSpec(transform="none", trainer="sklearn-mlp"))
    assert attack_stage(sklearn, emb, HEAD, AttackRecipe(name="kkt", params=params), 2, True, False).params["init"] == "rows"


def test_standardize_is_fitted_on_the_training_rows_only():
    data = _data()
    v = build_victim(VictimSpec(transform="standardize"), HEAD, data, seed=0)
    x = v.frame.apply(data.members)
    assert torch.allclose(x.mean(0), torch.zeros(10), atol=1e-5)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(10), atol=1e-4)
    assert torch.allclose(v.frame.to_raw(x), data.members, atol=1e-4)
    null = build_victim(VictimSpec(transform="standardize"), HEAD, data, seed=0, kind="null", null_mode="disjoint")
    assert torch.allclose(null.frame.mean, data.null.mean(0))  # the control fits its own draw


@pytest.mark.parametrize("trainer,dims,bias,stops", [
    ("paper", [10, 32, 1], "first", {"max_steps", "plateau", "grad_tol", "target_loss"}),
    ("sklearn-mlp", [10, 100, 1], "all", {"tol", "max_iter"}),
    ("default-torch", [10, 32, 1], "all", {"early_stopping", "max_epochs"}),
    ("linear", [10, 1], "all", {"lbfgs"}),
])
def test_each_trainer_builds_a_head_and_records_itself(trainer, dims, bias, stops):
    v = build_victim(VictimSpec(transform="standardize", trainer=trainer), HEAD, _data(), seed=0)
    assert v.head.dims == dims and v.head.bias_mode == bias and v.recipe.label == f"standardize+{trainer}"
    assert v.report.stopped_by in stops and v.report.train_acc == 1.0 and 0 <= v.oracle_residual <= 1.0
    assert v.linear == (trainer == "linear") and (v.active_share is None) == (trainer == "linear")
    again = build_victim(VictimSpec(transform="standardize", trainer=trainer), HEAD, _data(), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(v.head.parameters(), again.head.parameters()))  # seeded


def test_sklearn_mlp_follows_scikit_learns_defaults():
    from harness.victims.trainers.sklearn_mlp import SklearnParams

    p = SklearnParams()
    assert (p.hidden, p.alpha, p.lr, p.max_iter, p.tol, p.n_iter_no_change, p.batch_size) == ((100,), 1e-4, 1e-3, 200, 1e-4, 10, 200)
    v = build_victim(VictimSpec(trainer="sklearn-mlp", params={"max_iter": 5}), HEAD, _data(), seed=0)
    assert v.report.steps == 5 and v.report.stopped_by == "max_iter"


def test_default_torch_stops_on_the_validation_rows():
    v = build_victim(VictimSpec(trainer="default-torch", params={"patience": 3}), HEAD, _data(), seed=0)
    assert v.info["val_rows"] == 40 and v.report.stopped_by in ("early_stopping", "max_epochs")


def test_dp_sgd_records_the_epsilon_it_reached():
    pytest.importorskip("opacus")
    v = build_victim(VictimSpec(trainer="dp-sgd", params={"epsilon": 8.0, "epochs": 20}), HEAD, _data(), seed=0)
    assert 0 < v.info["epsilon"] <= 8.0 * 1.05 and v.info["delta"] == 1e-5 and v.info["noise_multiplier"] > 0
    assert not any(hasattr(p, "grad_sample") for p in v.head.parameters())
    # its objective is the paper's (a mean loss plus (wd/2)‖θ‖²): the report says so, and the bound holds there too
    from harness.diagnostics.oracle import stationarity_bound

    assert v.report.weight_decay == HEAD.weight_decay
    assert v.oracle_residual <= stationarity_bound(v.head, v.report) * (1 + 1e-6) + 1e-9


def test_dp_sgd_without_opacus_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "opacus", None)  # import opacus -> ImportError
    with pytest.raises(HarnessError) as e:
        recipe_parts(VictimSpec(trainer="dp-sgd"))
    assert e.value.field == "victim.trainer" and "pip install 'recon-harness[dp]'" in str(e.value)


BAD = [
    ({"trainer": "sklearn"}, "victim.trainer = 'sklearn'", "did you mean 'sklearn-mlp'"),
    ({"transform": "zscore"}, "victim.transform = 'zscore'", "known: none, standardize, l2, raw"),
    ({"trainer": "linear", "params": {"max_iters": 5}}, "victim.params.max_iters", "did you mean 'max_iter'"),
    ({"trainer": "sklearn-mlp", "params": {"alpha": -1}}, "victim.params.alpha", "greater than or equal"),
]


@pytest.mark.parametrize("spec,field,hint", BAD)
def test_bad_recipes_are_refused_when_the_spec_is_read(spec, field, hint):
    with pytest.raises(ValidationError) as e:
        VictimSpec(**spec)
    assert field in str(e.value) and hint in str(e.value)


@pytest.mark.parametrize("spec,field,hint", BAD[:2])
def test_bad_recipes_are_one_line_exit_2_and_no_rows(tmp_path, capsys, spec, field, hint):
    from harness.cli import main

    task = yaml.safe_load((ROOT / "tasks" / "quickstart.yaml").read_text(encoding="utf-8"))
    task["data"]["source"] = str(SST2)
    task["victim"] = spec
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(task))
    for argv in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "out")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and field in err[0] and hint in err[0], err
    assert not (tmp_path / "out").exists()


def test_run_recipe_flag_is_checked_before_any_work(tmp_path, capsys):
    from harness.cli import main

    assert main(["run", "tasks/quickstart.yaml", "--recipe", "standardise+paper", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--recipe = 'standardise+paper': transform 'standardise'" in err[0] and "did you mean 'standardize'" in err[0]
    assert main(["run", "tasks/quickstart.yaml", "--recipe", "paper", "--out", str(tmp_path / "o")]) == 2
    assert "TRANSFORM+TRAINER" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_linear_head_is_scored_as_its_weighted_sum():
    data = _data()
    v = build_victim(VictimSpec(trainer="linear"), HEAD, data, seed=0)
    mean = data.members.mean(0)
    emb = Embedded(data.members - mean, data.public - mean, mean, False, True, 0.0,
                   raw=torch.cat([data.members, data.public]))
    res = attack_stage(v, emb, HEAD, AttackRecipe(name="kkt", params={"iterations": 10**6}), 2, False, False)
    assert len(res.candidates) == 2 and res.runs[0].settings["method"] == "weighted-sum"
    w = v.head.layers[0].weight.detach()[0]
    cos = torch.nn.functional.cosine_similarity(res.candidates[1], w * v.frame.scale if v.frame.scale is not None else w, dim=0)
    assert cos > 0.999  # the sum itself, back in the embedding space
    s = score_stage(res, emb, 0.01)
    line = verdict(12, int(s.passed().sum()), 0.01, int((s.member_best > 0.8).sum()), linear=True)
    assert line.startswith("Linear head: the KKT condition fixes only a weighted sum")


def test_a_head_whose_units_all_died_is_refused_naming_its_step_size():
    """A head no unit of which fires on any training row has gradient 0 and passed as stationary (a step far too
    large can do this). Here every member is the same input, so centred it is 0, and without biases no unit fires."""
    import dataclasses

    data = _data()
    data = dataclasses.replace(data, members=torch.full_like(data.members, 2.0))  # centred: exactly 0
    flat = HEAD.model_copy(update={"bias": "none"})
    with pytest.raises(HarnessError) as e:
        build_victim(VictimSpec(transform="none"), flat, data, seed=0)
    assert e.value.field == "head.lr" and e.value.value == HEAD.lr
    assert "every first-layer unit inactive on every training row (a dead head, train accuracy 0.50)" in e.value.line()
    untrained = build_victim(VictimSpec(transform="none"), flat, data, seed=0, kind="null", null_mode="untrained")
    assert untrained.active_share == 0.0  # a control left at its initialisation is not trained: not checked
    assert build_victim(VictimSpec(transform="none"), HEAD, _data(), seed=0).active_share > 0


def test_a_head_whose_objective_diverged_is_refused_though_its_weights_are_finite():
    """Full-batch GD at too large a step stops at the first non-finite objective; the weights there can still be finite
    (about 1e20 here, as a CIFAR-10 draw's null victim at the pixel benches' step gave 1e17) and were attacked as a
    trained head, every attack run then diverging. Refused as the NaN-weight case is, naming the step."""
    steep = HEAD.model_copy(update={"optimizer": "gd", "lr": 100.0})
    with pytest.raises(TrainingDiverged) as e:  # a HarnessError (one line, exit 2) of its own type: benches retry it
        build_victim(VictimSpec(transform="none"), steep, _data(), seed=0)
    assert isinstance(e.value, HarnessError) and e.value.field == "head.lr" and e.value.value == 100.0
    assert "training diverged (non-finite objective after" in e.value.line() and "lower it" in e.value.line()
    again = pickle.loads(pickle.dumps(e.value))  # as Ray hands a worker's error to the driver
    assert type(again) is TrainingDiverged and again.line() == e.value.line()
    with pytest.raises(HarnessError, match="null victim's training diverged"):
        build_victim(VictimSpec(transform="none"), steep, _data(), seed=0, kind="null", null_mode="disjoint")
    assert build_victim(VictimSpec(transform="none"), HEAD.model_copy(update={"optimizer": "gd", "lr": 1.0}), _data(),
                        seed=0).report.stopped_by != "diverged"


def test_rows_name_the_device_the_attack_ran_on_not_the_first_gpu(monkeypatch):
    """On a machine with a GPU, an attack that ran on the CPU (kkt `device: cpu`, kkt-reference) is recorded as a
    CPU run (`cpu xN`, its threads counted as CPU-hours), not as the GPU it did not use."""
    import torch

    from harness.provenance import device_name

    data = _data()
    v = build_victim(VictimSpec(transform="none"), HEAD, data, seed=0)  # trained before the machine "has" a GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Some GPU")
    assert device_name() == "Some GPU" and device_name("cuda:0") == "Some GPU"
    assert device_name("cpu") == f"cpu x{torch.get_num_threads()}"
    mean = data.members.mean(0)
    emb = Embedded(data.members - mean, data.public - mean, mean, False, True, 0.0, raw=torch.cat([data.members, data.public]))
    fast = {"m": 8, "restarts": 2, "iterations": 2, "rungs": 0, "lr": 1e-6, "subspace": "off", "device": "cpu"}
    for name, params in (("kkt", fast), ("kkt-reference", {"m": 8, "restarts": 1, "iterations": 2})):
        res = attack_stage(v, emb, HEAD, AttackRecipe(name=name, params=params), 2, False, False)
        assert res.device == f"cpu x{torch.get_num_threads()}", (name, res.device)


@pytest.mark.parametrize("head", [HEAD, HEAD.model_copy(update={"widths": [16, 16], "loss": "ce"})])
def test_the_training_gradient_bounds_the_oracle_residual(head):
    """θ − Σ λ_i ∇Φ_i = ∇objective / wd for the training's own multipliers: the oracle's fitted λ can only do better.
    A head stopped early (the bound large) and one trained further (the bound small) both keep the oracle under it."""
    from harness.diagnostics.oracle import stationarity_bound
    from harness.scoring.verdict import UNEXPLAINED, doubts, stationarity_doubt

    data = dataclasses.replace(_data(), num_classes=2 if head.loss == "logistic" else 3)
    if head.loss == "ce":
        data = dataclasses.replace(data, labels=torch.arange(12) % 3, public_labels=torch.arange(40) % 3,
                                   null_labels=torch.arange(12) % 3)
    bounds, residuals = [], []
    for steps in (30, 600):
        v = build_victim(VictimSpec(transform="standardize"), head.model_copy(update={"max_steps": steps}), data, seed=0)
        assert v.report.weight_decay == head.weight_decay  # the objective the report's gradient norm measures
        bound = stationarity_bound(v.head, v.report)
        assert v.oracle_residual <= bound * (1 + 1e-6) + 1e-9, (steps, v.oracle_residual, bound)
        bounds.append(bound)
        residuals.append(v.oracle_residual)
    assert bounds[1] < bounds[0] / 10  # trained further: nearer stationarity, the bound falls with the residual
    # the verdict says so where the members leave much unexplained and the training may be why: the early stop only
    assert residuals[0] > UNEXPLAINED and "stopped short of a stationary point" in stationarity_doubt(bounds[0], residuals[0])
    assert residuals[1] < UNEXPLAINED and stationarity_doubt(bounds[1], residuals[1]) is None
    assert stationarity_doubt(None, residuals[0]) is None  # no bound (another trainer, a given head): nothing to say
    # in the verdict's doubts only where members are missing (every member back: nothing for more training to add)
    said = lambda good, n: doubts("paper", 1.0, residuals[0], 2, None, 0.01, False, good, None, bound=bounds[0], n=n)  # noqa: E731
    assert any("stationary point" in d for d in said(3, 12)) and not any("stationary point" in d for d in said(12, 12))
    assert stationarity_bound(v.head, dataclasses.replace(v.report, weight_decay=None)) is None
    assert stationarity_bound(v.head, None) is None
    # a penalty of another form (scikit-learn's: weights only, per batch) states no weight decay: no bound
    other = build_victim(VictimSpec(transform="standardize", trainer="sklearn-mlp", params={"max_iter": 3}), head, data, seed=0)
    assert other.report.weight_decay is None and stationarity_bound(other.head, other.report) is None
