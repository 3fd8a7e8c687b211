"""Victim heads: training reaches its stopping rule; safetensors round trip; the oracle residual."""

from __future__ import annotations

import pytest
import torch

from harness.diagnostics.oracle import oracle_residual
from harness.errors import HarnessError
from harness.heads.io import load_head, save_head
from harness.victims.frame import Frame
from harness.attacks.margins import margins
from harness.heads.mlp import MLPHead
from harness.heads.train import TrainConfig, train_head


def _data(n=12, d=16, classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.arange(n) % classes


def test_logistic_head_reaches_target_loss():
    x, y = _data()
    torch.manual_seed(0)
    head = MLPHead([16, 64, 1])
    rep = train_head(head, x, y, 2, TrainConfig(loss="logistic", optimizer="adam", lr=0.01, target_loss=1e-3, max_steps=5000), progress=False)
    assert rep.stopped_by == "target_loss" and rep.final_loss < 1e-3 and rep.train_acc == 1.0


def test_weight_decay_head_reaches_a_stationary_point():
    # a smooth (linear) head, so the stationary point is reachable to tight tolerance
    x, y = _data()
    torch.manual_seed(0)
    head = MLPHead([16, 1]).scale_init_(0.5)
    cfg = TrainConfig(loss="logistic", optimizer="lbfgs", lr=1.0, weight_decay=1e-2, grad_tol=1e-5, max_steps=500)
    rep = train_head(head, x, y, 2, cfg, progress=False)
    assert rep.stopped_by == "grad_tol" and rep.grad_norm < 1e-5
    # at a stationary point of loss + wd/2 |θ|², θ is exactly a combination of the members' margin gradients
    assert oracle_residual(head, "logistic", x, y) < 1e-4


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_weight_decay_taken_in_the_optimiser_step_trains_the_same_head_as_the_penalty_through_autograd(optimizer):
    """The trainer leaves the L2 term to the optimiser's coupled weight decay (weight_decay * p added to each
    gradient): step for step the same head as the objective's penalty differentiated by autograd, and the
    reported objective and gradient norm still include the term."""
    from harness.heads.losses import data_loss, targets_for

    x, y = _data()
    cfg = TrainConfig(loss="logistic", optimizer=optimizer, lr=0.01, weight_decay=0.05, grad_tol=0.0, max_steps=200)
    torch.manual_seed(0)
    head = MLPHead([16, 64, 1]).scale_init_(0.1)
    torch.manual_seed(0)
    ref = MLPHead([16, 64, 1]).scale_init_(0.1)
    report = train_head(head, x, y, 2, cfg, progress=False)
    params = list(ref.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr) if optimizer == "adam" else torch.optim.SGD(params, lr=cfg.lr)
    target = targets_for("logistic", y, 2)
    for _ in range(cfg.max_steps):
        opt.zero_grad()
        obj = data_loss("logistic", ref(x), target) + 0.5 * cfg.weight_decay * sum((p**2).sum() for p in params)
        obj.backward()
        opt.step()
    for a, b in zip(head.parameters(), params):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    obj = data_loss("logistic", ref(x), target) + 0.5 * cfg.weight_decay * sum((p**2).sum() for p in params)
    grads = torch.autograd.grad(obj, params)
    assert report.objective == pytest.approx(float(obj.detach()), rel=1e-4) and report.objective > report.final_loss
    assert report.grad_norm == pytest.approx(float(sum((g**2).sum() for g in grads)) ** 0.5, rel=1e-3)


def test_multiclass_and_mse_heads_train():
    x, y = _data(n=12, classes=3)
    for loss in ("ce", "mse"):
        torch.manual_seed(0)
        head = MLPHead([16, 64, 3])
        rep = train_head(head, x, y, 3, TrainConfig(loss=loss, optimizer="adam", lr=0.01, max_steps=3000, target_loss=1e-3), progress=False)
        assert rep.train_acc == 1.0, loss


def test_margins():
    out = torch.tensor([[2.0, 1.0, -1.0], [0.0, 3.0, 1.0]])
    soft = lambda a, b: (a * torch.exp(a) + b * torch.exp(b)) / (torch.exp(a) + torch.exp(b))  # noqa: E731 - rivals' softmax mean
    want = torch.stack([2.0 - soft(torch.tensor(1.0), torch.tensor(-1.0)), 1.0 - soft(torch.tensor(0.0), torch.tensor(3.0))])
    assert torch.allclose(margins("multiclass", torch.tensor([0, 2]), out), want)  # 1.238, -1.858
    assert torch.allclose(margins("binary", torch.tensor([1, 0]), torch.tensor([[2.0], [2.0]])), torch.tensor([2.0, -2.0]))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    head = MLPHead([8, 5, 4, 2], bias="first")
    mean = torch.randn(8)
    path = save_head(head, tmp_path / "h.safetensors", {"loss": "ce"}, mean=mean)
    loaded, meta, m2 = load_head(path)
    assert loaded.dims == [8, 5, 4, 2] and loaded.bias_mode == "first" and meta["loss"] == "ce"
    assert torch.equal(m2.mean, mean) and m2.scale is None and m2.transform == "none"
    x = torch.randn(3, 8)
    assert torch.equal(loaded(x), head(x))
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write leaves no temp file


def test_a_tanh_head_round_trips_with_its_activation(tmp_path):
    torch.manual_seed(0)
    head = MLPHead([6, 6, 2], bias="all", activation="tanh")
    loaded, meta, _ = load_head(save_head(head, tmp_path / "t.safetensors", {"loss": "ce"}))
    assert loaded.activation == "tanh" and meta["activation"] == "tanh" and loaded.bias_mode == "all"
    x = torch.randn(4, 6)
    assert torch.equal(loaded(x), head(x))
    with pytest.raises(ValueError, match="activation"):
        MLPHead([6, 2], activation="gelu")


def test_a_head_keeps_its_frame(tmp_path):
    """The transform published with a head (mean, per-dimension scale, the sphere) comes back whole."""
    head = MLPHead([8, 5, 1])
    frame = Frame(torch.randn(8), torch.rand(8) + 0.5, True, "standardize")
    _, meta, back = load_head(save_head(head, tmp_path / "h.safetensors", {"loss": "logistic"}, frame=frame))
    assert torch.equal(back.mean, frame.mean) and torch.equal(back.scale, frame.scale)
    assert back.l2 and back.transform == "standardize" and meta["frame"] == {"l2": True, "transform": "standardize"}
    u = torch.randn(4, 8)
    assert torch.allclose(back.to_raw(back.apply(u)), u, atol=1e-6)


def test_load_head_errors(tmp_path):
    with pytest.raises(HarnessError, match="no such file"):
        load_head(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(HarnessError, match="not a readable safetensors"):
        load_head(bad)


def test_a_half_precision_head_loads_widened_and_a_non_finite_one_is_refused(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    w0, w1 = torch.randn(10, 12), torch.randn(1, 10)
    for dtype in (torch.float16, torch.bfloat16):
        path = tmp_path / f"{dtype}.safetensors"
        save_file({"layers.0.weight": w0.to(dtype), "layers.1.weight": w1.to(dtype)}, str(path))
        head, _, _ = load_head(path)
        assert all(p.dtype == torch.float32 for p in head.parameters())
        assert torch.equal(head.layers[0].weight, w0.to(dtype).float())  # widened exactly
        assert head(torch.randn(3, 12)).shape == (3, 1)  # runs on float32 inputs
    for bad in (float("nan"), float("inf")):
        path = tmp_path / "nonfinite.safetensors"
        w = w0.clone()
        w[2, 3] = bad
        save_file({"layers.0.weight": w, "layers.1.weight": w1}, str(path))
        with pytest.raises(HarnessError, match=r"tensor layers.0.weight holds 1 non-finite values"):
            load_head(path)


def test_plateau_stops_a_kink_limited_run_early():
    # a ReLU head with weight decay settles where the gradient norm no longer falls (kinks)
    x, y = _data()
    torch.manual_seed(0)
    head = MLPHead([16, 64, 1]).scale_init_(0.5)
    cfg = TrainConfig(loss="logistic", optimizer="adam", lr=0.01, weight_decay=1e-2, grad_tol=1e-9, max_steps=20_000, plateau_steps=500, plateau_tol=1e-4)
    rep = train_head(head, x, y, 2, cfg, progress=False)
    assert rep.stopped_by == "plateau" and rep.steps < 20_000 and rep.train_acc == 1.0


def test_cosine_schedule_leaves_the_head_nearer_stationarity_than_a_constant_step():
    """Adam's step falling to 0 over max_steps (lr_schedule: cosine) ends the same budget with the members
    explaining the weights better (a lower KKT oracle residual) than a constant step (0.08 against 0.11 here)."""
    from harness.diagnostics.oracle import oracle_residual

    x, y = _data(n=40)
    res = {}
    for schedule in ("constant", "cosine"):
        torch.manual_seed(0)
        head = MLPHead([16, 64, 1]).scale_init_(0.1)
        cfg = TrainConfig(loss="logistic", optimizer="adam", lr=0.01, lr_schedule=schedule, weight_decay=1e-2,
                          grad_tol=0.0, max_steps=1000)
        rep = train_head(head, x, y, 2, cfg, progress=False)
        assert rep.stopped_by == "max_steps" and rep.train_acc == 1.0
        res[schedule] = oracle_residual(head, "logistic", x, y)
    assert res["cosine"] < 0.9 * res["constant"], res


def test_a_schedule_with_lbfgs_is_refused_not_ignored():
    with pytest.raises(ValueError, match="lr_schedule = 'cosine' with optimizer 'lbfgs'"):
        TrainConfig(optimizer="lbfgs", lr_schedule="cosine")


def test_untrained_null_victim_keeps_its_initialisation():
    from harness.data.split import MemberSplit
    from harness.pipeline.stages import Embedded, train_stage
    from harness.specs.task import HeadRecipe

    import numpy as np

    x, y = _data(n=8)
    split = MemberSplit(["a", "b"], [None] * 8, y.numpy(), np.arange(8), [], np.array([], dtype=int), np.array([], dtype=int))
    emb = Embedded(x, x[:0], torch.zeros(16), False, False, 0.0)
    recipe = HeadRecipe(widths=[8], init_scale=0.5, optimizer="adam", lr=0.01, max_steps=200)
    null = train_stage(emb, split, recipe, seed=0, kind="null", progress=False, null_mode="untrained")
    real = train_stage(emb, split, recipe, seed=0, kind="real", progress=False)
    torch.manual_seed(0)
    init = MLPHead([16, 8, 1]).scale_init_(0.5)
    assert null.report.stopped_by == "untrained" and null.report.steps == 0
    assert torch.equal(null.head.layers[0].weight, init.layers[0].weight)
    assert not torch.equal(real.head.layers[0].weight, init.layers[0].weight)


@pytest.mark.parametrize("loss,out,hidden,bias,act", [
    ("logistic", 1, [12], "first", "relu"), ("ce", 3, [12], "first", "relu"), ("mse", 2, [12], "first", "relu"),
    ("logistic", 1, [12, 7], "all", "relu"), ("ce", 2, [12], "all", "tanh"), ("logistic", 1, [9, 5], "none", "tanh"),
])
def test_oracle_residual_on_the_normal_equations_equals_nnls_on_the_jacobian(loss, out, hidden, bias, act):
    """The k x k solve from the layer-by-layer Gram (no Jacobian formed) gives what an NNLS (or least
    squares) over every parameter row of the Jacobian gives."""
    import numpy as np
    from scipy.optimize import nnls

    from harness.diagnostics.oracle import member_jacobian

    torch.manual_seed(3)
    head = MLPHead([6, *hidden, out], bias=bias, activation=act).double()
    x, y = torch.randn(10, 6, dtype=torch.float64), torch.arange(10) % max(out, 2)
    jac = member_jacobian(head, loss, x, y).detach().numpy()  # the direct solve, over every parameter row
    theta = head.flat_params().numpy()
    lam = np.linalg.lstsq(jac, theta, rcond=None)[0] if loss == "mse" else nnls(jac, theta, maxiter=5000)[0]
    direct = float(((theta - jac @ lam) ** 2).sum() / (theta ** 2).sum())
    assert oracle_residual(head, loss, x, y, kink_tol=0) == pytest.approx(direct, rel=1e-6, abs=1e-9)
    assert 0 < direct < 1
    from harness.diagnostics.oracle import oracle_fit

    _, parts = oracle_fit(head, loss, x, y, kink_tol=0)
    if loss == "mse":  # each member's part: the norm of its columns' weighted sum, from the same λ
        blocks = np.split(jac * lam, len(x), axis=1)
        want = np.array([np.linalg.norm(b.sum(1)) for b in blocks])
    else:  # |λ_i| times its gradient's norm
        want = np.abs(lam) * np.linalg.norm(jac, axis=0)
    assert parts.shape == (len(x),)
    assert parts == pytest.approx(want, rel=1e-4, abs=1e-8)


def test_effective_members_counts_how_many_members_carry_the_fit():
    import numpy as np

    from harness.diagnostics.oracle import effective_members

    assert effective_members(np.ones(8)) == pytest.approx(8.0)
    assert effective_members(np.array([3.0, 0, 0, 0])) == pytest.approx(1.0)
    assert effective_members(np.array([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0)
    assert effective_members(None) is None and effective_members(np.zeros(3)) is None


@pytest.mark.parametrize("scaled", [False, True])
def test_members_in_row_space_counts_the_members_w1_holds_above_the_cut(scaled):
    """Members +-e_0, +-e_1, +-e_2 (mean zero): a first layer over e_0 alone holds 2 of them; one that adds e_1 at
    1e-6 of e_0's singular value holds 4 with the cut below it and 2 with kkt's 1e-4 cut; in any frame."""
    from harness.diagnostics.row_space import members_in_row_space
    from harness.heads.mlp import MLPHead
    from harness.victims.frame import Frame

    d = 8
    e = torch.eye(d)
    u = torch.stack([e[0], -e[0], e[1], -e[1], e[2], -e[2]])
    scale = torch.linspace(0.5, 2.0, d) if scaled else None
    frame = Frame(torch.zeros(d), scale, False, "test")
    x = frame.apply(u)
    head = MLPHead([d, 5, 1])
    with torch.no_grad():
        w1 = torch.zeros(5, d)
        w1[:, 0] = torch.arange(1.0, 6.0)
        head.layers[0].weight.copy_(w1)  # a diagonal scale keeps each member on its axis: the same count in any frame
        assert members_in_row_space(head, frame, x) == 2
        w1[0, 1] = 1e-6 * float(torch.linalg.svdvals(w1)[0])
        head.layers[0].weight.copy_(w1)
        assert members_in_row_space(head, frame, x, noise=False) == 2
        assert members_in_row_space(head, frame, x, tol=1e-7, noise=False) == 4
        head.layers[0].weight.copy_(torch.cat([e[:3], torch.zeros(2, d)]))
        assert members_in_row_space(head, frame, x) == 6


def test_at_a_stationary_point_the_members_nearest_the_margin_carry_the_most():
    """A logistic head trained to stationarity with weight decay has θ = Σ λ_i ∇Φ_i with λ_i ∝ -ℓ'(margin_i): the
    members with the smallest margins weigh most in the oracle fit (the members the search recovers first)."""
    from scipy.stats import spearmanr

    from harness.diagnostics.oracle import effective_members, oracle_fit

    x, y = _data(n=24, d=16)
    torch.manual_seed(0)
    head = MLPHead([16, 64, 1]).scale_init_(0.1)
    cfg = TrainConfig(loss="logistic", optimizer="adam", lr=0.01, lr_schedule="cosine", weight_decay=1e-2,
                      grad_tol=0.0, max_steps=3000)
    train_head(head, x, y, 2, cfg, progress=False)
    residual, parts = oracle_fit(head, "logistic", x, y)
    with torch.no_grad():
        margin = ((y.float() * 2 - 1) * head(x).squeeze(-1)).numpy()
    assert residual < 0.1
    assert spearmanr(parts, -margin)[0] > 0.5, (parts, margin)
    assert 1.0 <= effective_members(parts) <= 24.0


def test_oracle_residual_of_a_diverged_head_is_nan():
    head = MLPHead([4, 3, 1])
    with torch.no_grad():
        head.layers[0].weight[0, 0] = float("nan")
    x, y = torch.randn(4, 4), torch.tensor([0, 1, 0, 1])
    assert oracle_residual(head, "logistic", x, y) != oracle_residual(head, "logistic", x, y)  # NaN
