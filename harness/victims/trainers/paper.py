"""`paper`: the published recipe: small initialisation, weight decay, full batch to a stationary point."""

from __future__ import annotations

from harness.heads.train import TrainConfig, fit_head
from harness.specs.task import HeadRecipe
from harness.victims.trainers.base import Fitted, Trainer


def head_config(head: HeadRecipe, seed: int) -> TrainConfig:
    return TrainConfig(
        loss=head.loss, optimizer=head.optimizer, lr=head.lr, lr_schedule=head.lr_schedule, weight_decay=head.weight_decay,
        max_steps=head.max_steps,
        target_loss=head.target_loss, grad_tol=head.grad_tol, seed=seed, plateau_steps=head.plateau_steps,
        plateau_tol=head.plateau_tol,
    )


class Paper(Trainer):
    """Small init, weight decay, full batch to stationarity: the task's `head:` settings (Haim, Buzaglo, Oz)."""

    name = "paper"
    uses_head_recipe = True

    def fit(self, x, labels, num_classes, head: HeadRecipe, seed, progress, val) -> Fitted:
        model, report = fit_head(x, labels, num_classes, head.widths, head.bias, head.init_scale, head_config(head, seed),
                                 seed, True, progress)
        return Fitted(model, report)

    def untrained(self, x, labels, num_classes, head: HeadRecipe, seed) -> Fitted:
        """The head at its initialisation (the untrained control)."""
        model, report = fit_head(x, labels, num_classes, head.widths, head.bias, head.init_scale, head_config(head, seed),
                                 seed, False, False)
        return Fitted(model, report)



