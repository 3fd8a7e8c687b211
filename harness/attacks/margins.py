"""The sample margin Phi of section 3, per head form, as the output-layer signal it backpropagates.

binary:      Phi = y * h(x)                      (y = ±1, one output)
multiclass:  Phi = h(x)[y] - sum_{k != y} q_k h(x)[k],  q = softmax of the rivals' outputs (fixed in theta, not in x)
regression:  Phi = h(x) (each output), lambda real-valued, one per output

Multiclass: cross-entropy with weight decay is stationary where theta = sum_i sum_{k != y_i} lambda_ik grad(h_yi -
h_k)(x_i) with lambda_ik proportional to p_ik, the head's probability of rival k: the rivals' split of a sample's
multiplier is the softmax of their outputs, known from the head (Buzaglo et al. 2023 give every pair a free
multiplier). The max-margin form, the largest rival alone, left a 4-class head's members explaining its weights to a
residual of 0.106; with the softmax split, 0.004, as on binary heads. A free multiplier per pair fits that too, and
spurious candidates as well (docs/attack.md, "Multiclass heads").

q holds the split the condition fixes: a constant of the weights, so theta's side of the condition does not
differentiate it; but a candidate's q moves with the candidate, and the attack's gradient in x follows it (on
10-class pixel heads, leaving it out stalled the search at 26-45x the residual it reaches with it).

`output_coef` returns c_j in R^C with  sum_j lambda_j * grad_theta Phi_j = grad_theta sum_j c_j . h(x_j),
which is what both the closed form and the double-backward reference differentiate.
"""

from __future__ import annotations

from typing import Literal

import torch

from harness.heads.losses import LossName

Form = Literal["binary", "multiclass", "regression"]


def head_form(loss: LossName, out_dim: int) -> Form:
    if loss == "mse":
        return "regression"
    if out_dim == 1:
        return "binary"
    return "multiclass"


def lambda_shape(form: Form, m: int, out_dim: int) -> tuple[int, ...]:
    return (m, out_dim) if form == "regression" else (m,)


def balanced_labels(m: int, num_classes: int, device=None) -> torch.Tensor:
    """Candidate labels 0,1,..,C-1,0,1,.. (balanced over classes)."""
    return torch.arange(m, device=device) % max(num_classes, 1)


def label_sign(labels: torch.Tensor, dtype) -> torch.Tensor:
    """y = +-1 of binary labels 0 / 1."""
    return labels.to(dtype) * 2 - 1


def at_label(t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(..., m): each sample's entry of t (..., m, C) at its own class."""
    return t.gather(-1, labels.long().expand(t.shape[:-1]).unsqueeze(-1)).squeeze(-1)


def output_coef(form: Form, lam: torch.Tensor, labels: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """c (..., m, C) for candidates' outputs `out` (..., m, C), lambdas and class labels (m,)."""
    if form == "regression":
        return lam.expand_as(out) if lam.shape != out.shape else lam
    if form == "binary":
        y = label_sign(labels, out.dtype).expand(out.shape[:-1])
        return (lam * y).unsqueeze(-1)
    onehot = torch.nn.functional.one_hot(labels.long(), out.shape[-1]).to(out.dtype).expand_as(out)
    return lam.unsqueeze(-1) * (onehot - rival_weights(labels, out))


def rival_weights(labels: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """q (..., m, C): the softmax of each sample's rival outputs (0 at its own class): a cross-entropy head's
    p_k / (1 - p_y), how a sample's multiplier splits over its rivals at a stationary point. Differentiable in `out`."""
    own = torch.nn.functional.one_hot(labels.long(), out.shape[-1]).bool().expand_as(out)
    return torch.softmax(out.masked_fill(own, float("-inf")), -1)


def margins(form: Form, labels: torch.Tensor, out: torch.Tensor, rivals: torch.Tensor | None = None) -> torch.Tensor:
    """Phi per sample (..., m) or (..., m, C) for regression, for the double backward in theta (the reference, the
    oracle). The rivals' weights come from `rivals`: the same outputs computed without theta's graph (so that they
    move with x, not with theta); by default `out` detached."""
    if form == "regression":
        return out
    if form == "binary":
        return label_sign(labels, out.dtype) * out[..., 0]
    return at_label(out, labels) - (rival_weights(labels, out.detach() if rivals is None else rivals) * out).sum(-1)
