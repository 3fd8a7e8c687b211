"""Build victims the way the harness trains them, and the null victims: same recipe on shuffled
labels, or the head left untrained at its initialisation (weights that never saw the data)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.attacks.base import Prior, Victim
from harness.heads.mlp import BiasMode
from harness.heads.train import TrainConfig, TrainReport, fit_head


@dataclass
class VictimRecipe:
    hidden: tuple[int, ...] = (1000,)
    bias: BiasMode = "first"
    init_scale: float = 1.0
    train: TrainConfig = TrainConfig()


def shuffled_labels(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The seeded shuffle of the labels that the 'shuffled' null victim is trained on."""
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 1))]


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
    null_mode: str = "shuffled",
) -> tuple[Victim, TrainReport, torch.Tensor]:
    """Centre `x` by its mean, train the head. `null=True` builds the control instead: with
    null_mode 'shuffled' the head is trained on shuffled labels (its weights still carry the
    members' span), with 'untrained' it is left at its initialisation (no member information).

    Returns the victim, the training report and the centred members (for scoring only).
    """
    if null_mode not in ("shuffled", "untrained"):
        raise ValueError(f"null_mode must be 'shuffled' or 'untrained', got {null_mode!r}")
    mean = x.mean(0)
    xc = (x - mean).float()
    y = labels.clone()
    if null and null_mode == "shuffled":
        y = shuffled_labels(y, seed)
    trained = not (null and null_mode == "untrained")
    head, report = fit_head(xc, y, num_classes, recipe.hidden, recipe.bias, recipe.init_scale, recipe.train, seed, trained, progress)
    victim = Victim(
        head=head, loss=recipe.train.loss, num_classes=num_classes, mean=mean.float(),
        weight_decay=recipe.train.weight_decay, prior=prior, typical_norm=typical_norm,
    )
    return victim, report, xc
