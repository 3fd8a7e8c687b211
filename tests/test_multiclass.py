"""Multiclass heads: cross-entropy with weight decay is stationary where each member's multiplier splits over its
rival classes as the head's softmax of their outputs (margins.py). The members of a 4-class head explain its weights
in that form exactly, and not with the largest rival alone (the max-margin form)."""

from __future__ import annotations

import torch
from scipy.optimize import nnls

from harness.attacks.margins import margins, output_coef, rival_weights
from harness.diagnostics.oracle import margin_gram, member_jacobian, oracle_residual
from harness.heads.mlp import MLPHead
from harness.heads.train import TrainConfig, train_head


def _head(seed=0):
    """A 4-class tanh head (smooth: L-BFGS reaches stationarity, which ReLU kinks stall) trained with weight decay."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 10, generator=gen, dtype=torch.float64)
    y = torch.arange(12) % 4
    torch.manual_seed(seed)
    head = MLPHead([10, 64, 4], bias="first", activation="tanh").double().scale_init_(0.5)
    cfg = TrainConfig(loss="ce", optimizer="lbfgs", lr=1.0, weight_decay=1e-2, max_steps=500, grad_tol=1e-10, target_loss=0.0)
    assert train_head(head, x, y, 4, cfg).grad_norm < 1e-4
    return head, x, y


def test_the_rivals_share_a_sample_s_multiplier_as_the_head_s_softmax():
    out = torch.tensor([[2.0, 0.0, 1.0], [5.0, 0.0, 5.0]])
    q = rival_weights(torch.tensor([0, 1]), out)
    torch.testing.assert_close(q[0], torch.tensor([0.0, 1.0, torch.e]) / (1 + torch.e))
    torch.testing.assert_close(q[1], torch.tensor([0.5, 0.0, 0.5]))
    torch.testing.assert_close(output_coef("multiclass", torch.ones(2), torch.tensor([0, 1]), out).sum(-1), torch.zeros(2))


def test_the_gram_is_the_jacobian_s():
    head, x, y = _head()
    jac = member_jacobian(head, "ce", x, y).detach()
    gram, c = margin_gram(head, "ce", x, y)
    torch.testing.assert_close(gram, jac.T @ jac)
    torch.testing.assert_close(c, jac.T @ head.flat_params().detach())


def test_a_cross_entropy_head_with_weight_decay_is_a_kkt_point_of_the_softmax_split_not_of_the_largest_rival():
    head, x, y = _head()
    theta = head.flat_params().detach().numpy()
    softmax_split = oracle_residual(head, "ce", x, y, kink_tol=0)
    params = list(head.parameters())
    out = head(x)
    largest = out.detach().masked_fill(torch.nn.functional.one_hot(y, 4).bool(), float("-inf")).argmax(1)
    phi = out.gather(1, y[:, None])[:, 0] - out.gather(1, largest[:, None])[:, 0]
    cols = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(phi[i], params, retain_graph=True)]) for i in range(len(x))]
    _, rnorm = nnls(torch.stack(cols, 1).detach().numpy(), theta)
    largest_only = rnorm**2 / float(theta @ theta)
    assert softmax_split < 1e-6 and largest_only > 0.05, (softmax_split, largest_only)
    assert margins("multiclass", y, out).shape == (12,)
