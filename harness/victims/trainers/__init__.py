"""Trainer name -> class. A new trainer is one module plus one line in TRAINERS."""

from __future__ import annotations

from harness.victims.trainers.base import Trainer
from harness.victims.trainers.default_torch import DefaultTorch
from harness.victims.trainers.dp_sgd import DPSGD
from harness.victims.trainers.linear import Linear
from harness.victims.trainers.paper import Paper
from harness.victims.trainers.sklearn_mlp import SklearnMLP

TRAINERS: dict[str, type[Trainer]] = {
    Paper.name: Paper,
    SklearnMLP.name: SklearnMLP,
    DefaultTorch.name: DefaultTorch,
    Linear.name: Linear,
    DPSGD.name: DPSGD,
}
