"""The oracle fit with members on ReLU kinks (harness/diagnostics/kinks.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.attacks.margins import margins

from harness.diagnostics.kinks import kink_fit, kink_pairs
from harness.diagnostics.oracle import oracle_fit
from harness.heads.mlp import MLPHead
from harness.heads.train import TrainConfig, train_head


def _gd_head(n=40, d=16, k=64, steps=2000):
    """A head trained full-batch by GD with weight decay: its members end on units' kinks."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, d, generator=g), (torch.randn(n, generator=g) > 0).long()
    torch.manual_seed(0)
    head = MLPHead([d, k, 1]).scale_init_(0.1)
    cfg = TrainConfig(loss="logistic", optimizer="gd", lr=0.1, weight_decay=1e-2, max_steps=steps, grad_tol=0.0)
    rep = train_head(head, x, y, 2, cfg, progress=False)
    return head, x, y, rep


def test_a_head_whose_members_sit_on_kinks_is_stationary_once_their_slopes_are_free():
    """GD leaves the gradient norm at 2.6e-2 and, with hard slopes 1[z > 0], the members explain θ to a residual of
    0.18: the head looks far from a KKT point. With the slopes of the (member, unit) pairs on a kink free in [0, 1]
    (the Clarke subgradient) they explain it to 0.009: it is near one."""
    head, x, y, rep = _gd_head()
    assert rep.grad_norm > 1e-2 and rep.train_acc == 1.0
    with torch.no_grad():
        assert int(kink_pairs(head.layers[0](x)).sum()) > 100
    hard, _ = oracle_fit(head, "logistic", x, y, kink_tol=0)
    kinked, parts = oracle_fit(head, "logistic", x, y)
    assert hard > 0.1 and kinked < 0.1 * hard, (hard, kinked)
    assert parts.shape == (len(x),) and np.isfinite(parts).all()


@pytest.mark.parametrize("out,bias", [(1, "first"), (3, "all"), (1, "none")])
def test_the_kink_fit_is_the_residual_of_its_own_slopes_and_lambdas(out, bias):
    """The Gram form of the fit gives what θ − Σ λ_i g_i gives when g_i is built by autograd through the fitted
    slopes (and each member's part is ‖λ_i g_i‖); the fit never ends above the hard one."""
    torch.manual_seed(1)
    head = MLPHead([5, 12, out], bias=bias).double()
    x, y = torch.randn(30, 5, dtype=torch.float64), torch.arange(30) % max(out, 2)
    loss = "logistic" if out == 1 else "ce"
    hard, _ = oracle_fit(head, loss, x, y, kink_tol=0)
    fit = kink_fit(head, loss, x, y, np.ones(30), tol=0.3)  # a wide tolerance: many free slopes
    assert fit is not None and fit.pairs > 10
    assert fit.residual <= hard + 1e-9
    s = torch.from_numpy(fit.slopes)
    params = list(head.parameters())
    cols = []
    for i in range(len(x)):
        z = head.layers[0](x[i : i + 1])
        h = torch.relu(z).detach() + (z - z.detach()) * s[i]  # the value of relu(z), the gradient of slope s
        o = head.layers[1](h)[0]
        phi = (2 * y[i] - 1) * o[0] if out == 1 else margins("multiclass", y[i : i + 1], o[None])[0]  # softmax-split rivals
        grads = torch.autograd.grad(phi, params, allow_unused=True)
        cols.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]))
    jac = torch.stack(cols, 1).detach()
    theta = head.flat_params().detach()
    lam = torch.from_numpy(fit.lam)
    direct = float(((theta - jac @ lam) ** 2).sum() / (theta ** 2).sum())
    assert fit.residual == pytest.approx(direct, rel=1e-6, abs=1e-9)
    assert fit.parts == pytest.approx((lam * jac.norm(dim=0)).numpy(), rel=1e-6, abs=1e-9)


def test_no_kink_fit_where_it_does_not_apply():
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.arange(8) % 2
    deep = MLPHead([4, 6, 5, 1]).double()
    tanh = MLPHead([4, 6, 1], activation="tanh").double()
    assert kink_fit(deep, "logistic", x, y, np.ones(8)) is None
    assert kink_fit(tanh, "logistic", x, y, np.ones(8)) is None
    assert kink_fit(MLPHead([4, 6, 1]).double(), "logistic", x, y, np.ones(8), tol=0) is None
