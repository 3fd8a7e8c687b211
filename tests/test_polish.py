"""The polish after the search: exact least squares on the first layer, on tiny victims in two frames."""

import dataclasses
import json

import pytest
import torch

from harness.attacks.base import AttackResult
from harness.attacks.polish import polish, polishable
from harness.diagnostics.oracle import oracle_residual
from harness.heads.mlp import MLPHead
from harness.pipeline.polish import polish_line, polish_stage
from harness.pipeline.stages import Embedded
from harness.specs.task import HeadRecipe
from harness.victims.build import VictimData, build_victim
from harness.victims.spec import VictimSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEAD = HeadRecipe(widths=[256], init_scale=1e-3, lr=1.0, max_steps=6000, target_loss=1e-5, grad_tol=1e-5)


def _victim(scale: float, transform: str = "none"):
    """A stationary victim on 8 Gaussian members in 64-d multiplied by `scale`, behind `transform`."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 64, generator=g) * scale
    y = torch.tensor([0, 1] * 4)
    v = build_victim(VictimSpec(transform=transform), HEAD, VictimData(x, y, 2, x[:0], y[:0]), seed=0, kind="real")
    return v, v.frame.apply(x), y


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=1)


@pytest.mark.parametrize("scale, transform", [(1.0, "none"), (30.0, "standardize")])
def test_noisy_members_are_polished_back_in_any_frame(scale, transform):
    v, members, y = _victim(scale, transform)
    oracle = oracle_residual(v.head, "logistic", members, y, kink_tol=0.0)
    noise = torch.randn(members.shape, generator=torch.Generator().manual_seed(1))
    start = members + 0.3 * members.norm(dim=1, keepdim=True) / members.shape[1] ** 0.5 * noise
    assert _cos(start, members).min() < 0.97
    done = polish(v.head, "logistic", start, y, steps=10)
    assert done.steps >= 1 and done.after < done.before
    assert done.after < 2 * oracle + 1e-4, (done.after, oracle)
    assert _cos(done.x, members).min() > 0.98


def test_the_polish_never_raises_the_residual_and_leaves_unused_candidates_alone():
    v, members, y = _victim(1.0)
    g = torch.Generator().manual_seed(2)
    x = torch.cat([members + 0.5 * torch.randn(members.shape, generator=g), torch.randn(8, 64, generator=g)])
    labels = torch.cat([y, y])
    done = polish(v.head, "logistic", x, labels, steps=5)
    assert done.after <= done.before
    assert done.candidates <= len(x)
    moved = (done.x - x).norm(dim=1) > 0
    assert int(moved.sum()) <= done.candidates


def test_zero_steps_change_nothing():
    v, members, y = _victim(1.0)
    done = polish(v.head, "logistic", members, y, steps=0)
    assert done.steps == 0 and torch.equal(done.x, members) and done.after == done.before


@pytest.mark.parametrize("layer_weights", [None, [1.0, 0.0, 1.0]], ids=["every-layer", "middle-left-out"])
def test_a_deeper_head_is_polished_through_its_first_layer(layer_weights):
    """Judged by the full residual or, as kkt searches a deeper head by default, without the middle layer's term."""
    head = HEAD.model_copy(update={"widths": [128, 128], "init_scale": 1e-2})
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(8, 64, generator=g), torch.tensor([0, 1] * 4)
    v = build_victim(VictimSpec(), head, VictimData(x, y, 2, x[:0], y[:0]), seed=0, kind="real")
    members = v.frame.apply(x)
    assert polishable(v.head, "logistic")
    oracle = oracle_residual(v.head, "logistic", members, y, kink_tol=0.0)
    start = members + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    done = polish(v.head, "logistic", start, y, steps=10, layer_weights=layer_weights)
    assert done.after < (2 * oracle + 1e-4 if layer_weights is None else done.before), (done.after, oracle)
    assert _cos(done.x, members).min() > 0.98 > _cos(start, members).min()


def test_a_multiclass_head_is_polished():
    head = HEAD.model_copy(update={"loss": "ce"})
    x, y = torch.randn(9, 64, generator=torch.Generator().manual_seed(5)), torch.tensor([0, 1, 2] * 3)
    v = build_victim(VictimSpec(), head, VictimData(x, y, 3, x[:0], y[:0]), seed=0, kind="real")
    members = v.frame.apply(x)
    assert polishable(v.head, "ce")
    start = members + 0.1 * members.norm(dim=1, keepdim=True) / 8 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    done = polish(v.head, "ce", start, y, steps=10)
    assert done.steps >= 1 and done.after < done.before  # a signal of the wrong sign takes no step
    assert _cos(done.x, members).min() > 0.98


def test_heads_outside_the_closed_form_are_left_as_the_search_ends():
    tanh, linear = MLPHead([64, 16, 1], activation="tanh"), MLPHead([64, 1])
    assert not polishable(tanh, "logistic") and not polishable(linear, "logistic")
    assert not polishable(MLPHead([64, 16, 3]), "mse")
    with pytest.raises(ValueError, match="ReLU head with a hidden layer"):
        polish(tanh, "logistic", torch.randn(4, 64), torch.tensor([0, 1, 0, 1]), steps=3)


def _stage_inputs(scale=1.0, transform="none"):
    v, members, y = _victim(scale, transform)
    mean = torch.randn(64) * 0.1
    emb = Embedded(members, members[:0], mean, False, False, 0.0)
    noisy = members + 0.2 * torch.randn(members.shape, generator=torch.Generator().manual_seed(3))
    raw_centred = v.frame.to_raw(noisy) - mean  # as attack_stage gives candidates back
    result = AttackResult(raw_centred.float(), y, torch.ones(len(y)), torch.zeros(len(y), dtype=torch.long), [],
                          {"polish": 6})
    return v, emb, result, members, mean


def test_the_stage_polishes_in_the_victims_frame_and_records_it():
    v, emb, result, members, mean = _stage_inputs(30.0, "standardize")
    out = polish_stage(result, v, emb, HEAD, pixels=False)
    assert out.polish is not None and out.polish["steps"] >= 1
    assert out.polish["residual_after"] < out.polish["residual_before"]
    back = v.frame.apply(out.candidates.double() + mean.double())
    assert _cos(back.float(), members).min() > 0.98
    assert result.polish is None  # the search's result is not changed in place


def test_the_stage_judges_a_deeper_head_as_its_search_did_when_the_result_leaves_the_weights_unset():
    """A sweep's merged shards state the task's parameters, not the attack's resolved ones: the stage then takes the
    attack's default weights, as a run's own result states them (middle layer left out)."""
    head = HEAD.model_copy(update={"widths": [128, 128], "init_scale": 1e-2})
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(8, 64, generator=g), torch.tensor([0, 1] * 4)
    v = build_victim(VictimSpec(), head, VictimData(x, y, 2, x[:0], y[:0]), seed=0, kind="real")
    emb = Embedded(v.frame.apply(x), x[:0], torch.zeros(64), False, False, 0.0)
    noisy = v.frame.apply(x) + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    result = AttackResult(v.frame.to_raw(noisy).float(), y, torch.ones(8), torch.zeros(8, dtype=torch.long), [], {"polish": 6})
    unset = polish_stage(result, v, emb, head, pixels=False).polish
    stated = polish_stage(dataclasses.replace(result, params={"polish": 6, "layer_weights": [1.0, 0.0, 1.0]}), v, emb, head,
                          pixels=False).polish
    every = polish_stage(dataclasses.replace(result, params={"polish": 6, "layer_weights": [1.0, 1.0, 1.0]}), v, emb, head,
                         pixels=False).polish
    assert unset["residual_before"] == stated["residual_before"] != every["residual_before"]


@pytest.mark.parametrize("change", [{"params": {"polish": 0}}, {"params": {}}])
def test_the_stage_does_nothing_when_off_or_for_another_attack(change):
    v, emb, result, _, _ = _stage_inputs()
    result = dataclasses.replace(result, **change)
    assert polish_stage(result, v, emb, HEAD, pixels=False) is result


def test_pixel_heads_are_not_polished():
    v, emb, result, _, _ = _stage_inputs()
    assert polish_stage(result, v, emb, HEAD, pixels=True) is result


def test_a_pool_above_the_cap_polishes_its_heaviest_candidates(monkeypatch):
    import harness.pipeline.polish as stage

    v, emb, result, _, _ = _stage_inputs()
    result = dataclasses.replace(result, lambdas=torch.tensor([5.0, 0.1, 4.0, 0.2, 3.0, 0.3, 2.0, 0.4]))
    monkeypatch.setattr(stage, "MAX_POOL", 4)
    out = polish_stage(result, v, emb, HEAD, pixels=False)
    moved = (out.candidates - result.candidates).norm(dim=1) > 0
    assert out.polish is not None and out.polish["candidates"] <= 4
    assert not moved[[1, 3, 5, 7]].any()  # the light half was left as the search ended


def test_a_run_with_kkt_records_the_polish_on_its_victims_rows(tmp_path, bert_card):
    from harness.store.store import ResultStore
    from tests.test_cli import _run, _task

    attack = {"name": "kkt", "params": {"m": 8, "restarts": 4, "iterations": 60, "rungs": 1}}
    out = tmp_path / "out"
    assert _run(_task(tmp_path, bert_card, attack=attack), "--out", out) == 0
    victims = ResultStore(out, create=False).read("victims").to_pylist()
    assert {v["victim"] for v in victims} == {"real", "null"}
    for v in victims:  # one hidden ReLU layer, one output: both victims are polished, and the rows say how
        assert v["polish_steps"] is not None and 0 <= v["polish_steps"] <= 6
        assert v["polish_residual_after"] <= v["polish_residual_before"] and v["polish_s"] >= 0
        assert json.loads(v["settings"])["attack_params"]["polish"] == 6


def test_the_run_summary_line_names_the_steps_and_residuals():
    line = polish_line({"steps": 3, "candidates": 66, "residual_before": 0.00232, "residual_after": 0.00128, "seconds": 0.31})
    assert line.strip() == "polish: 3 steps over the 66 candidates the joint fit weighs (λ > 0), joint residual 0.00232 -> 0.00128 in 0.3s"
