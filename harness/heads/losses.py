"""Training losses and per-sample margins of a head's outputs."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["logistic", "ce", "mse"]


def targets_for(loss: LossName, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices -> what the loss compares against (±1 for binary, indices for CE, one-hot/±1 for MSE)."""
    if loss == "logistic":
        return labels.to(torch.get_default_dtype()) * 2 - 1
    if loss == "ce":
        return labels.long()
    if num_classes == 2:
        return (labels.to(torch.get_default_dtype()) * 2 - 1).unsqueeze(1)
    return F.one_hot(labels.long(), num_classes).to(torch.get_default_dtype())


def data_loss(loss: LossName, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if loss == "logistic":
        return F.softplus(-target.to(out.dtype) * out[:, 0]).mean()
    if loss == "ce":
        return F.cross_entropy(out, target)
    return 0.5 * ((out - target.to(out.dtype)) ** 2).sum(1).mean()


def predictions(loss: LossName, out: torch.Tensor) -> torch.Tensor:
    """Predicted class indices from head outputs."""
    if out.shape[1] == 1:
        return (out[:, 0] > 0).long()
    return out.argmax(1)


def output_dim(loss: LossName, num_classes: int) -> int:
    if loss == "logistic":
        return 1
    if loss == "mse" and num_classes == 2:
        return 1
    return num_classes


def outputs_mismatch(out_dim: int, loss: LossName, num_classes: int) -> str:
    """Why a given head with `out_dim` outputs does not fit the task's loss and classes, and the fix."""
    said = f"has {out_dim} outputs; loss {loss!r} over {num_classes} classes needs {output_dim(loss, num_classes)}"
    if out_dim == num_classes and loss != "ce":
        return f"{said}: set head.loss: ce in the task (one output per class, in the order of `classes:`)"
    if out_dim == 1 and num_classes == 2:
        return f"{said}: set head.loss: logistic in the task (one logit, positive for the second of `classes:`)"
    return f"{said}: give the task the classes the head was trained on"
