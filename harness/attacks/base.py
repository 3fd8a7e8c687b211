"""What every attack takes and returns: a victim (head + what the attacker knows) and candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from harness.heads.losses import LossName
from harness.heads.mlp import MLPHead
from harness.victims.frame import Frame
from harness.victims.spec import DEFAULT_TRAINER

Prior = Literal["none", "box", "norm", "sphere"]


@dataclass
class Victim:
    """What the attacker knows: the head's weights and its recipe, never the members.

    Attacks work on the head's inputs (embeddings mapped through `frame`: centred, maybe scaled);
    `candidates` come back in that space and callers map them back with `frame.to_raw` before
    comparing in the backbone space or inverting. Priors are applied where they hold, through the frame.
    """

    head: MLPHead
    loss: LossName
    num_classes: int
    frame: Frame  # the input transform published with the head (its mean, any scaling, the sphere)
    weight_decay: float = 0.0
    prior: Prior = "norm"
    typical_norm: float | None = None  # typical norm of a centred input (public data estimate)
    box: tuple[float, float] = (-1.0, 1.0)  # valid range of uncentred inputs for the box prior
    public: torch.Tensor | None = None  # (k, d) public inputs in the head's frame (kkt's `init: public` starts there)
    trainer: str = DEFAULT_TRAINER  # the recipe's trainer, as published with the head (kkt's `init: auto` reads it)

    @property
    def dim(self) -> int:
        return self.head.in_dim

    @property
    def mean(self) -> torch.Tensor:
        return self.frame.mean


@dataclass
class RunRecord:
    """One restart: its settings, its loss curve and how it ended."""

    run_id: int
    settings: dict[str, Any]
    status: Literal["ok", "diverged", "pruned"]
    iterations: int
    final_loss: float
    wall_s: float
    loss_curve: list[float] = field(default_factory=list)  # sampled every `curve_every` iterations
    # why it ended: "iterations" (its budget ran out), "time_budget" (the opt-in time_budget_s cut it),
    # "pruned" (successive halving), "diverged"; None where not recorded (results of older versions)
    stopped_by: str | None = None


def lambda_size(lambdas, m: int) -> np.ndarray:
    """Each candidate's weight in theta as one number: its lambda, or for a regression head's (m, C) lambdas their
    norm (the first column alone ranks by one output). Non-finite sizes are -inf (ranked last)."""
    lam = np.zeros((m, 1)) if lambdas is None else np.asarray(lambdas, dtype=np.float64).reshape(m, -1)
    size = lam[:, 0] if lam.shape[1] == 1 else np.linalg.norm(lam, axis=1)
    return np.where(np.isfinite(size), size, -np.inf)


@dataclass
class AttackResult:
    candidates: torch.Tensor  # (m, d) centred
    labels: torch.Tensor  # (m,) class index of each candidate
    lambdas: torch.Tensor  # (m,) or (m, C) for regression
    run_ids: torch.Tensor  # (m,) which RunRecord produced each candidate
    runs: list[RunRecord]
    params: dict[str, Any]  # the attack's validated parameters
    wall_s: float = 0.0
    # (restarts, seed) of each seeded attack whose restarts these are, in order: one for a run, one per Ray shard
    shards: list[tuple[int, int]] = field(default_factory=list)
    device: str = ""  # where it ran (provenance.device_name(): `cpu xN` or the GPU); "" where not recorded
    polish: dict | None = None  # what the polish after the search did (attacks/polish.py: Polished.record); None: not run

    def layout(self) -> list[tuple[int, int]]:
        """The shards as recorded, else the one attack `params` describe (none for an attack without restarts)."""
        if self.shards or "restarts" not in self.params:
            return list(self.shards)
        return [(int(self.params["restarts"]), int(self.params.get("seed", 0)))]


class AttackParams(BaseModel):
    """Base of every attack's declared, validated parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused, not trained on
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds the starting candidates and the sampled settings")


class Attack:
    """An attack declares `Params` and implements `reconstruct`; register it in attacks/registry.py."""

    name: ClassVar[str]
    Params: ClassVar[type[AttackParams]] = AttackParams

    def __init__(self, params: AttackParams | dict | None = None):
        self.params = params if isinstance(params, AttackParams) else self.Params(**(params or {}))

    @classmethod
    def resolve(cls, params: dict, prior: str, public: int, trainer: str = DEFAULT_TRAINER) -> dict:
        """`params` with any setting the attack leaves to 'auto' decided for a victim with domain prior `prior`,
        `public` public inputs and a head trained by `trainer`: the pipeline decides before the attack
        (pipeline/plan.py), so every stage, shard and resumed run agrees. Attacks without such settings return
        `params` as they are."""
        return params

    def reconstruct(self, victim: Victim, progress: bool = True, start: torch.Tensor | None = None) -> AttackResult:
        """`start` (R, m, d) centred starting candidates replace the attack's own initialisation.
        Diagnostics only (diagnostics/identifiability.py starts from the members): attacks never see them."""
        raise NotImplementedError
