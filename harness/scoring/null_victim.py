"""Build victims the way the harness trains them, and the null victim (same recipe, shuffled labels)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.attacks.base import Prior, Victim
from harness.heads.losses import output_dim
from harness.heads.mlp import BiasMode, MLPHead
from harness.heads.train import TrainConfig, TrainReport, train_head


@dataclass
class VictimRecipe:
    hidden: tuple[int, ...] = (1000,)
    bias: BiasMode = "first"
    init_scale: float = 1.0
    train: TrainConfig = TrainConfig()


def build_victim(
    x: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    recipe: VictimRecipe,
    prior: Prior = "norm",
    typical_norm: float | None = None,
    null: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> tuple[Victim, TrainReport, torch.Tensor]:
    """Centre `x` by its mean, train the head; `null=True` trains on shuffled labels instead.

    Returns the victim, the training report and the centred members (for scoring only).
    """
    torch.manual_seed(seed)
    mean = x.mean(0)
    xc = (x - mean).float()
    y = labels.clone()
    if null:
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 1))]
    dims = [x.shape[1], *recipe.hidden, output_dim(recipe.train.loss, num_classes)]
    head = MLPHead(dims, bias=recipe.bias).scale_init_(recipe.init_scale)
    report = train_head(head, xc, y, num_classes, recipe.train, progress=progress)
    victim = Victim(
        head=head, loss=recipe.train.loss, num_classes=num_classes, mean=mean.float(),
        weight_decay=recipe.train.weight_decay, prior=prior, typical_norm=typical_norm,
    )
    return victim, report, xc
