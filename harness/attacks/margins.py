"""The sample margin Phi of section 3, per head form, as the output-layer signal it backpropagates.

binary:      Phi = y * h(x)                      (y = ±1, one output)
multiclass:  Phi = h(x)[y] - max_{c != y} h(x)[c]
regression:  Phi = h(x) (each output), lambda real-valued, one per output

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


def output_coef(form: Form, lam: torch.Tensor, labels: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """c (..., m, C) for candidates' outputs `out` (..., m, C), lambdas and class labels (m,)."""
    if form == "regression":
        return lam.expand_as(out) if lam.shape != out.shape else lam
    if form == "binary":
        y = (labels.to(out.dtype) * 2 - 1).expand(out.shape[:-1])
        return (lam * y).unsqueeze(-1)
    C = out.shape[-1]
    onehot = torch.nn.functional.one_hot(labels.long(), C).to(out.dtype).expand_as(out)
    rival = out.detach().masked_fill(onehot.bool(), float("-inf")).argmax(-1)
    sign = onehot - torch.nn.functional.one_hot(rival, C).to(out.dtype)
    return lam.unsqueeze(-1) * sign


def margins(form: Form, labels: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Phi per sample (..., m) or (..., m, C) for regression; used by the reference's double backward."""
    if form == "regression":
        return out
    if form == "binary":
        return (labels.to(out.dtype) * 2 - 1) * out[..., 0]
    onehot = torch.nn.functional.one_hot(labels.long(), out.shape[-1]).bool()
    own = out.gather(-1, labels.long().expand(out.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    rival = out.masked_fill(onehot.expand_as(out), float("-inf")).max(-1).values
    return own - rival
