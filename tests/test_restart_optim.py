"""kkt's batched optimiser (restart_optim.py): each restart steps as torch's own Adam or SGD-momentum would with
its own step size, in one batch ('mixed': SGD on even restarts, Adam on odd)."""

import pytest
import torch

from harness.attacks import fused
from harness.attacks.restart_optim import RestartOptimizer, update_


@pytest.mark.parametrize("optimizer,steps", [("adam", 0), ("adam", 2), ("adam", 5), ("sgd", 0), ("mixed", 0)])
def test_each_restart_steps_as_torch_would(optimizer, steps):
    """`steps`: the planned steps the bias-correction table is made for (0 and 2: it grows during the run)."""
    torch.manual_seed(0)
    x0, lam0 = torch.randn(4, 3, 5, dtype=torch.float64), torch.rand(4, 3, dtype=torch.float64)
    lr = torch.tensor([1e-3, 1e-2, 3e-2, 1e-1], dtype=torch.float64)
    x, lam = x0.clone(), lam0.clone()
    opt = RestartOptimizer(optimizer, 0.9, [x, lam], [lr, 2 * lr], steps)
    grads = [(torch.randn_like(x0), torch.randn_like(lam0)) for _ in range(5)]
    for gx, gl in grads:
        update_([x, lam], [gx.clone(), gl.clone()], *opt.state(slice(None)), opt.corrections(), opt.mode, opt.mom)
    for r in range(4):
        sgd = optimizer == "sgd" or (optimizer == "mixed" and r % 2 == 0)
        ps = [x0[r].clone().requires_grad_(), lam0[r].clone().requires_grad_()]
        groups = [{"params": [ps[0]], "lr": float(lr[r])}, {"params": [ps[1]], "lr": float(2 * lr[r])}]
        ref = torch.optim.SGD(groups, momentum=0.9) if sgd else torch.optim.Adam(groups, eps=1e-12)
        for gx, gl in grads:
            ps[0].grad, ps[1].grad = gx[r].clone(), gl[r].clone()
            ref.step()
        torch.testing.assert_close(x[r], ps[0].detach())
        torch.testing.assert_close(lam[r], ps[1].detach())
    assert opt.mode == optimizer and opt.t == 5


@pytest.mark.skipif(not fused.cxx_compiler(), reason="torch.compile on a CPU needs a C++ compiler")
@pytest.mark.usefixtures("one_torch_thread")
def test_a_compiled_step_skips_non_finite_gradient_entries_as_the_eager_one_does():
    """The step zeroes a gradient's NaNs and infinities (eager in place; compiled through a comparison with
    infinity, restart_optim._finite): the entry keeps its value, every other entry steps, both ways alike."""
    torch.manual_seed(3)
    x0, g0 = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    g0[0, 0, 0], g0[0, 1, 2], g0[1, 2, 3] = float("nan"), float("inf"), -float("inf")
    lr, sgd = torch.tensor([1e-2, 3e-2]).view(2, 1, 1), torch.zeros(2, 1, 1, dtype=torch.bool)

    def step(x, g, corr):
        x, m, v = x.clone(), torch.zeros_like(x), torch.zeros_like(x)
        update_([x], [g], [m], [v], [lr], [sgd], corr, "adam", 0.9)
        return x, m, v

    corr = RestartOptimizer("adam", 0.9, [x0], [lr.flatten()], 1).corrections()
    want = step(x0, g0.clone(), corr)
    got = torch.compile(step, dynamic=False)(x0, g0.clone(), corr)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
        assert torch.isfinite(a).all()
    bad = ~torch.isfinite(g0)
    assert torch.equal(got[0][bad], x0[bad]) and not torch.equal(got[0][~bad], x0[~bad])
